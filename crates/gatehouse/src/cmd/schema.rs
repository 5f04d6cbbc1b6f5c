//! `gatehouse schema`: JSON Schema for each file kind.

use std::process::ExitCode;

use gatehouse_core::model::{GrantFile, Pool, RequestFile, Resource, Settings, TosList};
use schemars::schema_for;

use crate::cli::{SchemaArgs, SchemaKind};
use crate::fsutil::write_atomic;

pub fn schema(kind: SchemaKind) -> serde_json::Value {
    let mut schema = match kind {
        SchemaKind::Settings => schema_for!(Settings),
        SchemaKind::Resource => schema_for!(Resource),
        SchemaKind::Grant => schema_for!(GrantFile),
        SchemaKind::Request => schema_for!(RequestFile),
        SchemaKind::Tos => schema_for!(TosList),
        SchemaKind::Pool => schema_for!(Pool),
    };
    let title = match kind {
        SchemaKind::Settings => "gatehouse.yml",
        SchemaKind::Resource => "gatehouse resource (resources/<name>.yml)",
        SchemaKind::Grant => "gatehouse grants (grants/<project>.yml)",
        SchemaKind::Request => "gatehouse request (requests/<any>.yml)",
        SchemaKind::Tos => "gatehouse terms-of-service list (people/tos.yml)",
        SchemaKind::Pool => "gatehouse sponsor credit pool (pools/<name>.yml)",
    };
    schema.insert("title".into(), title.into());
    schema.to_value()
}

pub fn name(kind: SchemaKind) -> &'static str {
    match kind {
        SchemaKind::Settings => "settings",
        SchemaKind::Resource => "resource",
        SchemaKind::Grant => "grant",
        SchemaKind::Request => "request",
        SchemaKind::Tos => "tos",
        SchemaKind::Pool => "pool",
    }
}

pub const ALL: [SchemaKind; 6] = [
    SchemaKind::Settings,
    SchemaKind::Resource,
    SchemaKind::Grant,
    SchemaKind::Request,
    SchemaKind::Tos,
    SchemaKind::Pool,
];

pub fn run(args: SchemaArgs) -> anyhow::Result<ExitCode> {
    let kinds: Vec<SchemaKind> = match args.kind {
        Some(k) => vec![k],
        None => ALL.to_vec(),
    };
    match &args.out {
        Some(dir) => {
            for k in kinds {
                let path = dir.join(format!("{}.schema.json", name(k)));
                let mut text = serde_json::to_string_pretty(&schema(k))?;
                text.push('\n');
                write_atomic(&path, text.as_bytes())?;
                println!("wrote {}", path.display());
            }
        }
        None if kinds.len() == 1 => {
            println!("{}", serde_json::to_string_pretty(&schema(kinds[0]))?);
        }
        None => {
            let all: serde_json::Map<String, serde_json::Value> = kinds
                .into_iter()
                .map(|k| (name(k).to_string(), schema(k)))
                .collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
