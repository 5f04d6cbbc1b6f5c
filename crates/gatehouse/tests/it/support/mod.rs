//! The loopback fakes of GitHub and Cirun (the `gatehouse-fake` crate, re-exported so that
//! tests name them `support::...`), and the world the `apply`, `expire` and kill tests share.

pub mod fs;
pub mod world;

pub use gatehouse_fake::*;
