//! The readings as a Lambda function: batches of the readings queue in, each reading applied to its meter
//! if it is later; everything it does lives in the shared `meters` crate (`meters::readings`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    meters::runtime::run_apply_readings().await
}
