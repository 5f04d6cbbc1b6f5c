//! Importers: build gatehouse resources and grants from the state an organisation already has.

pub mod cirun;
pub mod users_json;
