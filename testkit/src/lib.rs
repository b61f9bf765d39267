//! What the tests and benchmarks of every crate share, written once: Lambda event builders
//! (`events`), development tokens (`tokens`), DynamoDB Local (`dynamodb`), a Lambda Runtime API on loopback
//! and the function processes it drives (`runtime_api`, `function`), an identity provider's key set over HTTP (`jwks`),
//! the fixtures in `events/` (`fixtures`), meters to store (`meters`), what benchmarks read off a run
//! (`measure`), the crate's import graph (`module_graph`), a table's stream as Lambda batches (`streams`)
//! EventBridge's PutEvents captured (`eventbridge`) and an S3 emulator's buckets (`s3`).

pub mod dynamodb;
pub mod eventbridge;
pub mod events;
pub mod fault_proxy;
pub mod fixtures;
pub mod function;
pub mod jwks;
pub mod measure;
pub mod meters;
pub mod module_graph;
pub mod runtime_api;
pub mod s3;
pub mod streams;
pub mod tls_proxy;
pub mod tokens;

pub use events::HttpEvent;
pub use tokens::{ACCOUNT, OTHER_ACCOUNT, TEST_SECRET};
