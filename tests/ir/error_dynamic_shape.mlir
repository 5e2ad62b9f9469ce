// RUN:
func.func @f(%a: tensor<?x4xf32>) {
  return
}
