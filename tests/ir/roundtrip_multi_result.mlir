// RUN: --allow-unregistered-dialect
module {
  func.func @split(%x: tensor<8xbf16>) -> (tensor<4xbf16>, tensor<4xbf16>) {
    %parts:2 = "demo.split"(%x) {axis = 0 : i64} : (tensor<8xbf16>) -> (tensor<4xbf16>, tensor<4xbf16>)
    %a, %b:2 = "demo.three"(%parts#1) : (tensor<4xbf16>) -> (tensor<4xbf16>, tensor<4xbf16>, tensor<4xbf16>)
    return %parts#0, %b#1 : tensor<4xbf16>, tensor<4xbf16>
  }
}
