//! The deliveries this process waits on ([`crate::pending`]), so none is waited on twice.

use std::collections::HashSet;
use std::sync::Mutex;

/// The deliveries this process is waiting on, so none is waited on twice.
#[derive(Default)]
pub struct Waiting {
    ids: Mutex<HashSet<String>>,
}

impl Waiting {
    pub fn claim(&self, id: &str) -> bool {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string())
    }

    pub fn release(&self, id: &str) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    pub fn holds(&self, id: &str) -> bool {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(id)
    }
}
