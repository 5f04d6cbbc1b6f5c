pub mod cedar;
pub mod cirun;
