//! The global-memory traffic one call of a function cannot avoid, and the time floor it
//! implies. Batch-1 decode is memory-bound, so this floor is the yardstick for the schedule's
//! estimate and for measured step times (`mkc compile --stats`, docs/PERF.md).
//!
//! Every argument is read in full, except one that is only indexed by `tg.gather` on axis 0
//! (an embedding table): that reads one row per index. KV caches (the first operand of
//! `tg.kv_append`) are counted in full: the step at the last position of the cache reads
//! every row, which is the worst case; `cache_bytes_per_position` gives the floor at any
//! shorter context. Writes are the results the function returns, except updated caches, of
//! which a step writes one row each.

use mkc_ir::dialect::builtin;
use mkc_ir::dialect::builtin::weight_arg_name;
use mkc_ir::dialect::tg;
use mkc_ir::{Attr, Body, OpId, Type, ValueId};
use std::collections::HashMap;

/// What one call reads and writes, in bytes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepTraffic {
    /// Arguments marked `{mkc.weight = ...}`.
    pub weight_bytes: f64,
    /// KV caches, all positions.
    pub cache_bytes: f64,
    /// KV caches, one position of every cache.
    pub cache_bytes_per_position: f64,
    /// The other arguments (token, position, ...).
    pub input_bytes: f64,
    /// Returned results plus one appended row per cache.
    pub write_bytes: f64,
}

impl StepTraffic {
    /// Bytes read with the caches holding `context` positions.
    pub fn read_bytes_at(&self, context: i64) -> f64 {
        self.weight_bytes + self.input_bytes + self.cache_bytes_per_position * context as f64
    }

    /// Bytes read with the caches full.
    pub fn read_bytes(&self) -> f64 {
        self.weight_bytes + self.input_bytes + self.cache_bytes
    }
}

/// Analyses `func` (a `func.func` at the tensor level: uses are direct, not through
/// `fused.group` region arguments).
pub fn step_traffic(body: &Body, func: OpId) -> Result<StepTraffic, String> {
    let entry = body
        .entry_block(func, 0)
        .ok_or("the function has no body")?;
    let args = &body.blocks[entry].args;
    let index_of: HashMap<ValueId, usize> = args.iter().enumerate().map(|(i, &a)| (a, i)).collect();
    // Every use of every argument, as (op, operand index).
    let mut uses: Vec<Vec<(OpId, usize)>> = vec![Vec::new(); args.len()];
    for op in body.walk(func) {
        for (k, v) in body.ops[op].operands.iter().enumerate() {
            if let Some(&i) = index_of.get(v) {
                uses[i].push((op, k));
            }
        }
    }
    let mut t = StepTraffic::default();
    let mut caches = Vec::new();
    for (i, &a) in args.iter().enumerate() {
        let ty = body.ty(a);
        let full = ty.byte_size() as f64;
        let is_cache = uses[i]
            .iter()
            .any(|&(op, k)| k == 0 && body.ops[op].name == tg::KvAppend::NAME);
        if is_cache {
            let rows = ty
                .as_tensor()
                .and_then(|t| t.shape.first().copied())
                .unwrap_or(1);
            t.cache_bytes += full;
            t.cache_bytes_per_position += full / rows.max(1) as f64;
            caches.push(a);
            continue;
        }
        let read = match gathered_rows(body, ty, &uses[i]) {
            Some(rows) => rows,
            None => full,
        };
        if weight_arg_name(body, func, i).is_some() {
            t.weight_bytes += read;
        } else {
            t.input_bytes += read;
        }
    }
    // Returned values: an updated cache costs one row, anything else its size.
    let ret = body.blocks[entry]
        .ops
        .iter()
        .copied()
        .find(|&o| body.ops[o].name == builtin::Return::NAME);
    if let Some(ret) = ret {
        for &v in &body.ops[ret].operands {
            let appended = body
                .def_op(v)
                .filter(|&d| body.ops[d].name == tg::KvAppend::NAME)
                .map(|d| body.ops[d].operands[0]);
            t.write_bytes += match appended {
                Some(cache) => {
                    let ty = body.ty(cache);
                    let rows = ty
                        .as_tensor()
                        .and_then(|t| t.shape.first().copied())
                        .unwrap_or(1);
                    ty.byte_size() as f64 / rows.max(1) as f64
                }
                None => body.ty(v).byte_size() as f64,
            };
        }
    }
    Ok(t)
}

/// Bytes an argument reads when every use is a row lookup (`tg.gather` of it on axis 0):
/// one row per index of each lookup. `None` when any use reads it some other way.
fn gathered_rows(body: &Body, ty: &Type, uses: &[(OpId, usize)]) -> Option<f64> {
    let t = ty.as_tensor()?;
    let rows = *t.shape.first()?;
    if uses.is_empty() || rows == 0 {
        return None;
    }
    let row = ty.byte_size() as f64 / rows as f64;
    let mut total = 0.0;
    for &(op, k) in uses {
        let data = &body.ops[op];
        let axis = data.attrs.get("axis").and_then(Attr::as_int).unwrap_or(0);
        if data.name != tg::Gather::NAME || k != 0 || axis != 0 {
            return None;
        }
        let indices = body.ty(*data.operands.get(1)?).as_tensor()?.num_elements();
        total += row * indices as f64;
    }
    Some(total.min(ty.byte_size() as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(src: &str) -> StepTraffic {
        let body = mkc_ir::parse_text("t.mlir", src).unwrap_or_else(|e| panic!("{e}"));
        let func = mkc_ir::dialect::builtin::first_func(&body).unwrap();
        step_traffic(&body, func).unwrap()
    }

    #[test]
    fn embedding_rows_weights_and_caches() {
        let t = traffic(
            r#"func.func @step(%tok: tensor<i64>, %pos: tensor<i64>, %cache: tensor<16x2x4xbf16>,
                    %emb: tensor<100x8xbf16> {mkc.weight = "emb"},
                    %w: tensor<8x8xbf16> {mkc.weight = "w"}) -> (tensor<8xbf16>, tensor<16x2x4xbf16>) {
              %x = "tg.gather"(%emb, %tok) {axis = 0 : i64} : (tensor<100x8xbf16>, tensor<i64>) -> tensor<8xbf16>
              %y = "tg.matmul"(%w, %x) : (tensor<8x8xbf16>, tensor<8xbf16>) -> tensor<8xbf16>
              %r = "tg.reshape"(%y) : (tensor<8xbf16>) -> tensor<2x4xbf16>
              %c = "tg.kv_append"(%cache, %r, %pos) : (tensor<16x2x4xbf16>, tensor<2x4xbf16>, tensor<i64>) -> tensor<16x2x4xbf16>
              func.return %y, %c : tensor<8xbf16>, tensor<16x2x4xbf16>
            }"#,
        );
        // One 16-byte row of the embedding; all 128 bytes of w.
        assert_eq!(t.weight_bytes, 16.0 + 128.0);
        assert_eq!(t.cache_bytes, 256.0);
        assert_eq!(t.cache_bytes_per_position, 16.0);
        assert_eq!(t.input_bytes, 16.0);
        assert_eq!(t.write_bytes, 16.0 + 16.0);
        assert_eq!(t.read_bytes_at(3), 16.0 + 128.0 + 16.0 + 48.0);
        assert_eq!(t.read_bytes(), 16.0 + 128.0 + 16.0 + 256.0);
    }

    #[test]
    fn a_table_read_another_way_too_is_read_in_full() {
        // Tied embeddings: the LM head reads the whole table.
        let t = traffic(
            r#"func.func @step(%tok: tensor<i64>, %emb: tensor<100x8xbf16> {mkc.weight = "emb"}) -> tensor<100xbf16> {
              %x = "tg.gather"(%emb, %tok) {axis = 0 : i64} : (tensor<100x8xbf16>, tensor<i64>) -> tensor<8xbf16>
              %l = "tg.matmul"(%emb, %x) : (tensor<100x8xbf16>, tensor<8xbf16>) -> tensor<100xbf16>
              func.return %l : tensor<100xbf16>
            }"#,
        );
        assert_eq!(t.weight_bytes, 1600.0);
        assert_eq!(t.write_bytes, 200.0);
    }
}
