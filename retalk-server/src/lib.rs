//! The retalk relay (library part): configuration, storage and the HTTP service.
