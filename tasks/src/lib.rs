//! mkc-tasks: the task level. It turns a fused step into tasks over byte ranges with events,
//! places them on SMs, and says what a step costs.
//!
//! It owns: `split-attention` (decode attention as parts over the context and a combine),
//! `split-argmax` (a long vector's argmax as its parts' winners and their combine),
//! `int8-activations` (products by 8- and 4-bit block weights on rounded activations),
//! `split-k` (a residual add of an MLP's down projection as a product accumulating onto it),
//! the memory plan ([`memplan`]: packed weights, KV caches, the reused workspace arena), a
//! step's traffic and its bandwidth floor ([`traffic`]), `tile` (every fused group's results
//! cut into tasks, events derived from their ranges) and `schedule` (SM queues under the
//! cost model, and the estimate). It does not own the task dialect and its graph form
//! (`mkc-ir`'s `dialect::task`), fusion (`mkc-fusion`) or the kernel (`mkc-kernel`).

pub mod int8_activations;
pub mod memplan;
pub mod schedule;
pub mod split_argmax;
pub mod split_attention;
pub mod split_k;
pub mod tile;
pub mod traffic;

/// Registers this crate's passes: `int8-activations`, `split-argmax`, `split-attention`,
/// `split-k`, `tile`, `schedule`.
pub fn register_passes(r: &mut mkc_passes::PassRegistry) {
    r.register(int8_activations::info());
    r.register(split_argmax::info());
    r.register(split_attention::info());
    r.register(split_k::info());
    r.register(tile::info());
    r.register(schedule::info());
}
