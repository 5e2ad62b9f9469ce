// RUN:
module {
}

// An empty module stays one.
// CHECK:      {{^module \{$}}
// CHECK-NEXT: {{^\}$}}
