//! The bundled example access repository.
