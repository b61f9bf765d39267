//! The floor for cold-start figures: a hello-world `lambda_runtime` function built with the same profile
//! as the five functions, doing nothing at init and answering every event with a constant.

use lambda_runtime::{Error, LambdaEvent, service_fn};

// The same runtime flavour as the five functions, so the floor is the floor of what they run.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<serde_json::Value>| async {
        Ok::<_, Error>(serde_json::json!({"statusCode": 200, "body": "hello"}))
    }))
    .await
}
