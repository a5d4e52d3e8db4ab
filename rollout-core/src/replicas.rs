//! work in progress
