//! Files in and out: what a task, scan or DICOM folder holds ([`source`]), the loader thread
//! ([`loader`]), labels saved in the scan's geometry ([`label_io`]) and the review sidecar
//! ([`sidecar`]).

pub mod label_io;
pub mod loader;
pub mod sidecar;
pub mod source;
