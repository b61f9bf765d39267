//! `GET /api/v1/meters/{id}` as a Lambda function; everything it does lives in the shared `meters` crate.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    meters::runtime::run(meters::Endpoint::GetMeter).await
}
