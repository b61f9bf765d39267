//! `POST /api/v1/meters` as a Lambda function; everything it does lives in the shared `meters` crate.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    meters::runtime::run(meters::Endpoint::CreateMeter).await
}
