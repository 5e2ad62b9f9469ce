// A tiny GPU kernel in MLIR's gpu dialect: `mkc mlir-to-ptx examples/scale_kernel.mlir`.
module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @scale(%buf: !llvm.ptr<1>, %factor: f32) kernel {
      %tid = gpu.thread_id x
      %bid = gpu.block_id x
      %bdim = gpu.block_dim x
      %base = arith.muli %bid, %bdim : index
      %idx = arith.addi %base, %tid : index
      %i = arith.index_cast %idx : index to i64
      %p = llvm.getelementptr %buf[%i] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, f32
      %v = llvm.load %p : !llvm.ptr<1> -> f32
      %r = arith.mulf %v, %factor : f32
      llvm.store %r, %p : f32, !llvm.ptr<1>
      gpu.return
    }
  }
}
