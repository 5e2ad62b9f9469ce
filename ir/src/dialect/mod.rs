//! The dialects mkc ships. Each file declares its ops into a [`crate::registry::Registry`].

pub mod builtin;
pub mod fused;
pub mod kernel;
pub mod task;
pub mod tg;
