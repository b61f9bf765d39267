//! The change events as a Lambda function: the table's stream in, one EventBridge event per meter change
//! out; everything it does lives in the shared `meters` crate (`meters::events`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    meters::runtime::run_meter_events().await
}
