// RUN:
module {
}
