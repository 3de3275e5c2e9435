//! `lnc status`: connect with a profile and report the session's state.

use clap::Args;
use lnc_node::spend::ledger::{Sat, utc};
use lnc_node::spend::service::{REMAINING_PATH, RemainingResponse};

/// Arguments of `lnc status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Profile to connect with.
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// Seconds to wait for the node before giving up.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
}

/// `lnc status`.
pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let (client, creds) = super::connect::connect_profile(&args.profile, args.wait, true).await?;
    println!("status: {}", client.status());
    println!("profile: {}", args.profile);
    println!("mailbox: {}", creds.mailbox().addr());
    println!("node: {}", super::connect::hex_key(&creds));
    println!("expires: {}", super::connect::expiry_text(&creds));
    let perms: Vec<String> = creds.permissions().iter().map(|o| o.to_string()).collect();
    println!("permissions: {}", perms.join(" "));
    match remaining(&client).await {
        Ok(Some(r)) => println!("budget: {}", budget_line(&r)),
        Ok(None) => {}
        Err(e) => println!("budget: unknown ({})", e.message()),
    }
    client.shutdown().await;
    Ok(())
}

/// Asks the node's own `lncnode.Budget` service; `None` for a session without a budget
/// (or a node that does not offer the service, such as litd).
async fn remaining(
    client: &lnc_client::Client,
) -> Result<Option<RemainingResponse>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(client.channel());
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let codec = tonic_prost::ProstCodec::<(), RemainingResponse>::default();
    let path = http::uri::PathAndQuery::from_static(REMAINING_PATH);
    match grpc.unary(tonic::Request::new(()), path, codec).await {
        Ok(r) => Ok(Some(r.into_inner())),
        Err(s) if matches!(s.code(), tonic::Code::NotFound | tonic::Code::Unimplemented) => {
            Ok(None)
        }
        Err(s) => Err(s),
    }
}

fn budget_line(r: &RemainingResponse) -> String {
    let mut t = format!(
        "{} of {} left per {}",
        Sat(r.left_msat),
        Sat(r.limit_msat),
        r.period
    );
    if r.reserved_msat > 0 {
        t.push_str(&format!(", {} in flight", Sat(r.reserved_msat)));
    }
    if r.resets_at > 0 {
        t.push_str(&format!(", more from {}", utc(r.resets_at)));
    }
    if r.max_payment_msat > 0 {
        t.push_str(&format!(", at most {} a payment", Sat(r.max_payment_msat)));
    }
    t
}
