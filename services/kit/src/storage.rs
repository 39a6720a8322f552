//! The S3 client: one bucket, a custom endpoint and path-style addressing for
//! self-hosted servers, credentials from the environment's keys (or, only when the operator
//! asks for it, the AWS SDK's default chain).

use aws_sdk_s3::config::{Credentials, Region};

use crate::config::{S3Config, S3Credentials};

/// The bucket and the client that reaches it.
#[derive(Clone, Debug)]
pub struct Storage {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
}

impl Storage {
    pub async fn connect(config: &S3Config) -> Self {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(config.timeouts.connect)
            .read_timeout(config.timeouts.read)
            .operation_attempt_timeout(config.timeouts.attempt)
            .build();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .timeout_config(timeouts);
        if let S3Credentials::Keys {
            access_key_id,
            secret_access_key,
            session_token,
        } = &config.credentials
        {
            loader = loader.credentials_provider(Credentials::new(
                access_key_id,
                secret_access_key.expose(),
                session_token.as_ref().map(|t| t.expose().to_owned()),
                None,
                "atelier-environment",
            ));
        }
        tracing::info!(
            endpoint = config.endpoint.as_deref().unwrap_or("aws"),
            bucket = %config.bucket,
            credentials = %config.credentials.source(),
            "S3 client"
        );
        let shared = loader.load().await;
        let mut builder =
            aws_sdk_s3::config::Builder::from(&shared).force_path_style(config.force_path_style);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Self {
            client: aws_sdk_s3::Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
        }
    }

    /// Creates the bucket when it does not exist yet (local servers and tests).
    pub async fn ensure_bucket(&self) -> anyhow::Result<()> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => {
                let exists = err.as_service_error().is_some_and(|e| {
                    e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
                });
                if exists {
                    Ok(())
                } else {
                    Err(anyhow::Error::new(err).context(format!("creating bucket {}", self.bucket)))
                }
            }
        }
    }
}
