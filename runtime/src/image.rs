//! Device memory as bytes: a scheduled program's buffers, built on the host from its places
//! (what the GPU launcher uploads) and read back (what it downloads). No CUDA here, so the
//! byte layout is tested on any machine.

use crate::interp::Interpreter;
use crate::tensor::Tensor;
use mkc_ir::dialect::builtin::{first_func, func_body, weight_arg_name, FuncBody};
use mkc_ir::dialect::task::Layout;
use mkc_ir::dialect::task::TaskProgram;
use mkc_ir::dialect::tg;
use mkc_ir::dialect::tg::elementwise::Scalar;
use mkc_ir::weights::WeightSource;
use mkc_ir::{Body, ElemType, EntityRef, OpId, TensorType, ValueId};
use std::collections::HashMap;

/// A scheduled program as the launcher sees it.
pub struct Program {
    pub body: Body,
    pub tasks: TaskProgram,
    /// Non-weight arguments, in order (what a call passes).
    pub inputs: Vec<ValueId>,
    /// What the function returns.
    pub returns: Vec<ValueId>,
    pub layouts: HashMap<ValueId, Layout>,
    func: OpId,
    steps: Vec<OpId>,
}

fn tensor_type(body: &Body, v: ValueId) -> Result<TensorType, String> {
    body.ty(v)
        .as_tensor()
        .cloned()
        .ok_or_else(|| format!("{v} is not a tensor"))
}

/// Writes `t` at `l` into `buf` (the buffer's bytes).
pub fn encode(l: &Layout, t: &Tensor, buf: &mut [u8]) -> Result<(), String> {
    let addr = l.addresser();
    let eb = l.elem_bytes as usize;
    for i in 0..t.len() {
        let at = addr(i as u64) as usize;
        let dst = buf
            .get_mut(at..at + eb)
            .ok_or_else(|| format!("element {i} falls outside its buffer"))?;
        let x = t.get(i);
        match t.ty.elem {
            ElemType::F32 => dst.copy_from_slice(&(x.f() as f32).to_le_bytes()),
            ElemType::F64 => dst.copy_from_slice(&x.f().to_le_bytes()),
            ElemType::BF16 => {
                dst.copy_from_slice(&half::bf16::from_f64(x.f()).to_bits().to_le_bytes())
            }
            ElemType::F16 => {
                dst.copy_from_slice(&half::f16::from_f64(x.f()).to_bits().to_le_bytes())
            }
            ElemType::I64 => dst.copy_from_slice(&x.i().to_le_bytes()),
            ElemType::I32 => dst.copy_from_slice(&(x.i() as i32).to_le_bytes()),
            e => return Err(format!("the launcher does not handle {e} tensors yet")),
        }
    }
    Ok(())
}

/// Writes the row-major elements `src` (each `l.elem_bytes` bytes, already the stored type)
/// at the permuted layout `l` into `buf`: bytes moved, not converted. Element by element
/// through [`encode`] a Llama-3.1-8B's transposed projections took about a minute; this
/// walks the destination in storage order (each thread its own run of it) and reads the
/// source in tiles of its two innermost stored axes.
pub fn permute_into(l: &Layout, src: &[u8], buf: &mut [u8]) -> Result<(), String> {
    let eb = l.elem_bytes as usize;
    let n_elems: usize = l.shape.iter().map(|&d| d.max(0) as usize).product();
    if src.len() != n_elems * eb {
        return Err(format!(
            "holds {} bytes, but {n_elems} elements of {eb} bytes need {}",
            src.len(),
            n_elems * eb
        ));
    }
    let at = l.offset as usize;
    let dst = buf
        .get_mut(at..at + src.len())
        .ok_or_else(|| "falls outside its buffer".to_string())?;
    if n_elems == 0 {
        return Ok(());
    }
    // Row-major strides of the logical axes, then the stored axes' shape and source strides.
    let rank = l.shape.len();
    let mut row_major = vec![1usize; rank];
    for a in (0..rank.saturating_sub(1)).rev() {
        row_major[a] = row_major[a + 1] * l.shape[a + 1].max(0) as usize;
    }
    let mut stored: Vec<(usize, usize)> = l
        .perm
        .iter()
        .map(|&a| (l.shape[a].max(0) as usize, row_major[a]))
        .collect();
    while stored.len() < 2 {
        stored.insert(0, (1, 0));
    }
    let (m, sm) = stored[stored.len() - 2];
    let (n, sn) = stored[stored.len() - 1];
    let outer = &stored[..stored.len() - 2];
    // Destination rows (n elements each) go to threads in contiguous runs.
    let rows = n_elems / n;
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(rows.div_ceil(64).max(1));
    let per = rows.div_ceil(threads);
    std::thread::scope(|s| {
        for (t, chunk) in dst.chunks_mut(per * n * eb).enumerate() {
            let r0 = t * per;
            s.spawn(move || {
                let rows_here = chunk.len() / (n * eb);
                let (rows, m, n) = ((r0, rows_here), (m, sm), (n, sn));
                // The element size a constant where it is common: a 2-byte copy, not a call.
                match eb {
                    2 => permute_rows::<2>(chunk, src, rows, outer, m, n),
                    4 => permute_rows::<4>(chunk, src, rows, outer, m, n),
                    _ => permute_rows::<0>(chunk, src, rows, outer, m, n),
                }
            });
        }
    });
    Ok(())
}

/// Destination rows `r0..r0 + count` of [`permute_into`], in tiles of 64 x 64 elements of
/// `EB` bytes (0: `dst.len() / (count * n)`).
fn permute_rows<const EB: usize>(
    dst: &mut [u8],
    src: &[u8],
    (r0, count): (usize, usize),
    outer: &[(usize, usize)],
    (m, sm): (usize, usize),
    (n, sn): (usize, usize),
) {
    const TILE: usize = 64;
    let eb = if EB > 0 { EB } else { dst.len() / (count * n) };
    // The source element where destination row `r` starts.
    let row_base = |r: usize| {
        let (mut o, i) = (r / m, r % m);
        let mut base = i * sm;
        for &(d, st) in outer.iter().rev() {
            base += (o % d) * st;
            o /= d;
        }
        base
    };
    let mut i0 = 0;
    while i0 < count {
        let i1 = (i0 + TILE).min(count);
        let bases: Vec<usize> = (i0..i1).map(|i| row_base(r0 + i)).collect();
        let mut j0 = 0;
        while j0 < n {
            let j1 = (j0 + TILE).min(n);
            for (i, &base) in (i0..i1).zip(&bases) {
                let row = &mut dst[i * n * eb..(i + 1) * n * eb];
                for j in j0..j1 {
                    let from = (base + j * sn) * eb;
                    row[j * eb..(j + 1) * eb].copy_from_slice(&src[from..from + eb]);
                }
            }
            j0 = j1;
        }
        i0 = i1;
    }
}

/// Reads a tensor of type `ty` at `l` from `buf`.
pub fn decode(l: &Layout, ty: &TensorType, buf: &[u8]) -> Result<Tensor, String> {
    let addr = l.addresser();
    let eb = l.elem_bytes as usize;
    let mut err = None;
    let t = Tensor::from_fn(ty.clone(), |i| {
        let at = addr(i as u64) as usize;
        let Some(b) = buf.get(at..at + eb) else {
            err = Some(format!("element {i} falls outside its buffer"));
            return Scalar::I(0);
        };
        let mut w = [0u8; 8];
        w[..eb].copy_from_slice(b);
        match ty.elem {
            ElemType::F32 => Scalar::F(f32::from_le_bytes(w[..4].try_into().unwrap()) as f64),
            ElemType::F64 => Scalar::F(f64::from_le_bytes(w)),
            ElemType::BF16 => {
                Scalar::F(half::bf16::from_bits(u16::from_le_bytes([w[0], w[1]])).to_f64())
            }
            ElemType::F16 => {
                Scalar::F(half::f16::from_bits(u16::from_le_bytes([w[0], w[1]])).to_f64())
            }
            ElemType::I64 => Scalar::I(i64::from_le_bytes(w)),
            ElemType::I32 => Scalar::I(i32::from_le_bytes(w[..4].try_into().unwrap()) as i64),
            e => {
                err = Some(format!("the launcher does not handle {e} tensors yet"));
                Scalar::I(0)
            }
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(t),
    }
}

impl Program {
    /// Parses and verifies a scheduled program's text (an artifact's `program.mlir`).
    pub fn parse(text: &str, name: &str) -> Result<Program, String> {
        let registry = mkc_ir::Registry::with_all_dialects();
        let mut sources = mkc_ir::SourceMap::new();
        let body =
            mkc_ir::parse_and_verify(&mut sources, name, text, &registry, Default::default())
                .map_err(|d| mkc_ir::diag::render_all(&d, &sources))?;
        Program::of_body(body, name)
    }

    /// A scheduled program already in memory (verified: what `parse` makes of its text).
    pub fn of_body(body: Body, name: &str) -> Result<Program, String> {
        let tasks = TaskProgram::from_body(&body)?;
        if tasks.schedule.is_none() {
            return Err(format!("{name}: the task graph is not scheduled"));
        }
        let func = first_func(&body).ok_or("the program has no function")?;
        let FuncBody { args, steps, ret } = func_body(&body, func)?;
        let layouts: HashMap<ValueId, Layout> = tasks.layouts(&body)?.into_iter().collect();
        let inputs = (0..args.len())
            .filter(|&i| weight_arg_name(&body, func, i).is_none())
            .map(|i| args[i])
            .collect();
        let returns = body.ops[ret].operands.clone();
        Ok(Program {
            body,
            tasks,
            inputs,
            returns,
            layouts,
            func,
            steps,
        })
    }

    /// The place of every argument of the function (inputs and weights), in order: what two
    /// programs must agree on to run on the same memory.
    pub fn arg_layouts(&self) -> Vec<Option<&Layout>> {
        let entry = self
            .body
            .entry_block(self.func, 0)
            .expect("parsed with a body");
        self.body.blocks[entry]
            .args
            .iter()
            .map(|v| self.layouts.get(v))
            .collect()
    }

    pub fn layout(&self, v: ValueId) -> Result<&Layout, String> {
        self.layouts
            .get(&v)
            .ok_or_else(|| format!("{v} has no place in memory"))
    }

    /// The initial bytes of every buffer: weights from `weights` (copied as stored when
    /// their layout is row-major), constants evaluated, everything else zero.
    pub fn initial_images(&self, weights: &dyn WeightSource) -> Result<Vec<Vec<u8>>, String> {
        self.initial_images_with(weights, &mut |_, _| {})
    }

    /// [`Program::initial_images`], reporting (weight bytes placed, of all) after each weight.
    pub fn initial_images_with(
        &self,
        weights: &dyn WeightSource,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Vec<Vec<u8>>, String> {
        let body = &self.body;
        // Fallible: a buffer larger than this machine's memory is an error, not an abort.
        let mut images: Vec<Vec<u8>> = self
            .tasks
            .graph
            .buffers
            .values()
            .map(|b| {
                let mut v = Vec::new();
                usize::try_from(b.bytes)
                    .ok()
                    .and_then(|n| v.try_reserve_exact(n).ok().map(|()| n))
                    .map(|n| {
                        v.resize(n, 0u8);
                        v
                    })
                    .ok_or_else(|| {
                        format!("cannot allocate {} bytes for buffer '{}'", b.bytes, b.name)
                    })
            })
            .collect::<Result<_, String>>()?;
        let entry = body.entry_block(self.func, 0).expect("checked");
        let weight_bytes = |i: usize, a: ValueId| {
            weight_arg_name(body, self.func, i)
                .and_then(|_| body.ty(a).as_tensor())
                .map_or(0, |_| body.ty(a).byte_size())
        };
        let total: u64 = body.blocks[entry]
            .args
            .iter()
            .enumerate()
            .map(|(i, &a)| weight_bytes(i, a))
            .sum();
        let mut done = 0u64;
        for (i, &a) in body.blocks[entry].args.iter().enumerate() {
            let Some(name) = weight_arg_name(body, self.func, i) else {
                continue;
            };
            done += weight_bytes(i, a);
            let l = self.layout(a)?;
            let ty = tensor_type(body, a)?;
            let raw = weights.raw(name)?;
            let img = &mut images[l.buffer.index()];
            let row_major = l.perm.iter().enumerate().all(|(k, &p)| k == p);
            if let Some(f) = l.block {
                // ggml's blocks into the two planes the kernel reads.
                if raw.elem != ty.elem || raw.shape != ty.shape {
                    return Err(format!(
                        "weight '{name}' is {} {:?} in the checkpoint, but the program expects {ty}",
                        raw.elem, raw.shape
                    ));
                }
                let planes = match l.k_block_major() {
                    true => f.to_planes_k_major(&raw.bytes, l.shape[0].max(0) as usize),
                    false => f.to_planes(&raw.bytes),
                }
                .ok_or_else(|| format!("weight '{name}' is not whole {} blocks", f.name()))?;
                let at = l.offset as usize;
                img.get_mut(at..at + planes.len())
                    .ok_or_else(|| format!("weight '{name}' falls outside its buffer"))?
                    .copy_from_slice(&planes);
            } else if row_major && raw.elem == ty.elem && raw.shape == ty.shape {
                let at = l.offset as usize;
                img.get_mut(at..at + raw.bytes.len())
                    .ok_or_else(|| format!("weight '{name}' falls outside its buffer"))?
                    .copy_from_slice(&raw.bytes);
            } else if raw.elem == ty.elem
                && raw.shape == ty.shape
                && raw.elem.bytes() as u64 == l.elem_bytes
            {
                permute_into(l, &raw.bytes, img).map_err(|e| format!("weight '{name}' {e}"))?;
            } else {
                let t = Tensor::from_raw(&raw, &ty).map_err(|e| format!("weight '{name}' {e}"))?;
                encode(l, &t, img)?;
            }
            progress(done, total);
        }
        let none = mkc_ir::weights::NoWeights;
        let mut interp = Interpreter::new(body, &none);
        for &op in &self.steps {
            if body.ops[op].name == tg::Constant::NAME {
                let t = interp.eval_op(op, &[])?.remove(0);
                let l = self.layout(body.ops[op].results[0])?;
                encode(l, &t, &mut images[l.buffer.index()])?;
            }
        }
        Ok(images)
    }

    /// Positions the KV caches hold, for a decode step (token, position, caches...); 0 when
    /// the program has no cache.
    pub fn cache_positions(&self) -> i64 {
        self.inputs
            .get(2)
            .and_then(|&v| self.ty(v).ok())
            .and_then(|t| t.shape.first().copied())
            .unwrap_or(0)
    }

    /// The type of a value.
    pub fn ty(&self, v: ValueId) -> Result<TensorType, String> {
        tensor_type(&self.body, v)
    }

    /// The type a value's bytes have in its buffer ([`mkc_ir::dialect::task::storage_elem`]: an f32
    /// KV cache is kept as bf16).
    pub fn storage_ty(&self, v: ValueId) -> Result<TensorType, String> {
        let mut t = self.ty(v)?;
        let buffer = &self.tasks.graph.buffers[self.layout(v)?.buffer].name;
        t.elem = mkc_ir::dialect::task::storage_elem(buffer, t.elem);
        Ok(t)
    }
}

/// Checks that `short` can run on the memory of `main`: the same buffers in the same order,
/// every input and weight in the same place (the KV caches carry over from step to step
/// whichever program ran), every buffer but the workspace the same size; raises `sizes` to
/// what either needs.
pub fn shares_memory(main: &Program, short: &Program, sizes: &mut [usize]) -> Result<(), String> {
    let (gm, gs) = (&main.tasks.graph, &short.tasks.graph);
    let names = |g: &mkc_ir::dialect::task::TaskGraph| -> Vec<String> {
        g.buffers.values().map(|b| b.name.clone()).collect()
    };
    if names(gm) != names(gs) || sizes.len() != gs.buffers.len() {
        return Err("the short steps' program has other buffers than the main one".into());
    }
    for ((bm, bs), size) in gm
        .buffers
        .values()
        .zip(gs.buffers.values())
        .zip(sizes.iter_mut())
    {
        if bm.name != "arena" && bm.bytes != bs.bytes {
            return Err(format!(
                "the short steps' program sizes buffer '{}' differently",
                bm.name
            ));
        }
        // Constants are written from the main program's values.
        if bm.name == "constants" && bm.bytes > 0 {
            return Err("the short steps' program has constants of its own".into());
        }
        *size = (*size).max(bs.bytes as usize);
    }
    if main.arg_layouts() != short.arg_layouts() {
        return Err("the short steps' program places an input or a weight elsewhere".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mkc_ir::dialect::task::BufferId;

    #[test]
    fn tensors_round_trip_through_device_bytes_in_any_layout() {
        for elem in [ElemType::F32, ElemType::BF16, ElemType::I64, ElemType::F16] {
            let ty = TensorType::new([3, 2, 4], elem);
            let t = Tensor::from_fn(ty.clone(), |i| {
                if elem.is_float() {
                    Scalar::F(i as f64 * 0.5 - 3.0)
                } else {
                    Scalar::I(i as i64 * 7 - 20)
                }
            });
            let mut l = Layout::row_major(
                BufferId::from_u32(0),
                16,
                vec![3, 2, 4],
                elem.bytes() as u64,
            );
            l.perm = vec![1, 2, 0];
            let mut buf = vec![0u8; 16 + 24 * elem.bytes()];
            encode(&l, &t, &mut buf).unwrap();
            assert_eq!(decode(&l, &ty, &buf).unwrap(), t, "{elem}");
            // The first 16 bytes are not the tensor's.
            assert!(buf[..16].iter().all(|&b| b == 0));
            // Too small a buffer is an error, not a panic.
            assert!(encode(&l, &t, &mut [0u8; 20]).is_err());
        }
    }

    /// A block weight's planes, row-major or K-block-major, hold each element's block where
    /// its layout says: the payload and scales of the block the element is in, in the file.
    #[test]
    fn block_planes_are_where_the_layout_says() {
        let f = mkc_ir::quant::BlockFormat::Q4_1;
        let (rows, k) = (3usize, 96usize);
        let (bb, be) = (f.block_bytes(), f.block_elems());
        let file: Vec<u8> = (0..rows * k / be * bb)
            .map(|i| (i * 13 + i / 7) as u8)
            .collect();
        let ty = TensorType::new(vec![rows as i64, k as i64], ElemType::Block(f));
        for perm in [vec![0, 1], vec![1, 0]] {
            let l = Layout {
                perm: perm.clone(),
                ..Layout::of_type(BufferId::from_u32(0), 0, &ty)
            };
            let planes = match l.k_block_major() {
                true => f.to_planes_k_major(&file, rows).unwrap(),
                false => f.to_planes(&file).unwrap(),
            };
            for i in 0..(rows * k) as u64 {
                let (n, kb) = (i as usize / k, i as usize % k / be);
                let block = &file[(n * k / be + kb) * bb..][..bb];
                let (payload, meta) = f.split_block(block);
                let [(pa, pn), (ma, mn)] = l.block_parts(i).unwrap();
                assert_eq!(
                    &planes[pa as usize..][..pn as usize],
                    payload,
                    "{perm:?} {i}"
                );
                assert_eq!(&planes[ma as usize..][..mn as usize], meta, "{perm:?} {i}");
            }
        }
        assert!(f.to_planes_k_major(&file[1..], rows).is_none());
    }

    /// Row-major bytes of `n` elements of `eb` (2 or 4) bytes each: finite floats, different
    /// wherever the index is below 0x7f00.
    fn distinct_bytes(n: usize, eb: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| ((i % 0x7f00) as u32 * 0x10001).to_le_bytes()[..eb].to_vec())
            .collect()
    }

    #[test]
    fn permuted_weights_are_placed_as_encode_places_them() {
        // Every permutation of a 3-D shape, a transpose wider than a tile, a 1-D vector.
        let perms3 = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        let mut cases: Vec<(Vec<i64>, Vec<usize>)> = perms3
            .iter()
            .map(|p| (vec![3, 70, 5], p.to_vec()))
            .collect();
        cases.push((vec![130, 200], vec![1, 0]));
        cases.push((vec![9], vec![0]));
        for elem in [ElemType::BF16, ElemType::F32] {
            let eb = elem.bytes();
            for (shape, perm) in &cases {
                let n: usize = shape.iter().product::<i64>() as usize;
                let raw = distinct_bytes(n, eb);
                let ty = TensorType::new(shape.clone(), elem);
                let mut l = Layout::row_major(BufferId::from_u32(0), 32, shape.clone(), eb as u64);
                l.perm = perm.clone();
                let rt = mkc_ir::weights::RawTensor {
                    elem,
                    shape: shape.clone(),
                    bytes: std::borrow::Cow::Borrowed(&raw[..]),
                };
                let t = Tensor::from_raw(&rt, &ty).unwrap();
                let (mut want, mut got) = (vec![0u8; 32 + n * eb], vec![0u8; 32 + n * eb]);
                encode(&l, &t, &mut want).unwrap();
                permute_into(&l, &raw, &mut got).unwrap();
                assert!(want == got, "{elem} {shape:?} stored {perm:?}");
                // Too small a buffer or too few bytes: an error, not a panic.
                assert!(permute_into(&l, &raw, &mut got[..n * eb]).is_err());
                assert!(permute_into(&l, &raw[1..], &mut got).is_err());
            }
        }
    }
}
