//! Integration tests of the storage crate: one binary, one module per concern.

mod commit;
mod crash;
mod events;
mod open;
mod state;
mod support;
mod usage;
