//! The API over real HTTP: `meters-local` started on a free port, called as a client would call it. One
//! file per feature; what they share is `helpers`.

mod auth;
mod browser;
mod concurrency;
mod conditional;
mod connections;
mod crud;
mod helpers;
mod import;
mod lists;
mod process;
mod readings;
mod validation;
