// A toy tensor-level graph: a residual block with a scale that folds and a repeated
// subexpression. Run: mkc opt examples/toy_block.mlir --pass-pipeline='builtin.module(func.func(canonicalize,cse),dce)'
func.func @block(%x: tensor<1x8xbf16>, %w: tensor<1x8xbf16> {mkc.weight = "block.scale"}) -> tensor<1x8xbf16> {
  %half = "tg.constant"() {value = dense<0.5> : tensor<1x8xbf16>} : () -> tensor<1x8xbf16>
  %two = "tg.constant"() {value = dense<2.0> : tensor<1x8xbf16>} : () -> tensor<1x8xbf16>
  %one = "tg.mul"(%half, %two) : (tensor<1x8xbf16>, tensor<1x8xbf16>) -> tensor<1x8xbf16>
  %scaled = "tg.mul"(%x, %w) : (tensor<1x8xbf16>, tensor<1x8xbf16>) -> tensor<1x8xbf16>
  %gate = "tg.sigmoid"(%scaled) : (tensor<1x8xbf16>) -> tensor<1x8xbf16>
  %again = "tg.mul"(%x, %w) : (tensor<1x8xbf16>, tensor<1x8xbf16>) -> tensor<1x8xbf16>
  %act = "tg.mul"(%again, %gate) : (tensor<1x8xbf16>, tensor<1x8xbf16>) -> tensor<1x8xbf16>
  %kept = "tg.mul"(%act, %one) : (tensor<1x8xbf16>, tensor<1x8xbf16>) -> tensor<1x8xbf16>
  %unused = "tg.exp"(%x) : (tensor<1x8xbf16>) -> tensor<1x8xbf16>
  %out = "tg.add"(%x, %kept) : (tensor<1x8xbf16>, tensor<1x8xbf16>) -> tensor<1x8xbf16>
  return %out : tensor<1x8xbf16>
}
