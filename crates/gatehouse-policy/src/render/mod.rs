pub mod cirun;
