//! Relay conformance: one scripted HashMail sequence run against aperture (the Go relay
//! most users meet, `interop/cmd/go-relay` on aperture's own package) and against our
//! relay, answers compared field by field: gRPC code, message text, and *when* a refusal
//! arrives (at call time, or on the stream after the call succeeded). A client written
//! against either relay must see the same thing from the other.
//!
//! Where we deviate on purpose, [`DEVIATIONS`] names the step and why; the test also fails
//! if a named deviation stops deviating, so the list stays true.
//!
//! Needs the Go programs: `bash interop/build.sh` (`.ci/run` does it).
#![allow(clippy::unwrap_used, missing_docs)]

use std::fmt;
use std::time::Duration;

use futures_util::StreamExt;
use lnc_hashmail::pb;
use lnc_hashmail::pb::hash_mail_client::HashMailClient;
use lnc_testkit::go::{GoProc, field};
use lnc_testkit::hashmail::{RelayClient, Trust, auth_req, cbox, desc, writer};
use lnc_testkit::relay::Relay;
use tonic::transport::Channel;

/// Generous for a loaded 2-core machine; every wait below is for an answer that comes.
const T: Duration = Duration::from_secs(30);

/// Steps where our answer differs from aperture's on purpose: the step, what ours must
/// then answer (its `Debug` form), and why.
const DEVIATIONS: &[(&str, &str, &str)] = &[
    (
        "create without auth",
        r#"refused at call: InvalidArgument "auth type required""#,
        VALIDATION,
    ),
    (
        "create without descriptor",
        r#"refused at call: InvalidArgument "cipher box descriptor required""#,
        VALIDATION,
    ),
    (
        "create with empty id",
        r#"refused at call: InvalidArgument "stream_id required""#,
        VALIDATION,
    ),
    (
        "create with 3-byte id",
        r#"refused at call: InvalidArgument "invalid stream_id: must be 64 bytes, got 3""#,
        "LNC's stream IDs are 64 bytes (SHA-512); aperture takes any length, we refuse          others so a malformed client fails at once instead of waiting on a stream its          peer will never name",
    ),
    (
        "receive from missing stream",
        r#"refused at call: Unknown "stream not found""#,
        RECV_REFUSAL,
    ),
    (
        "second reader",
        r#"refused at call: Unknown "read stream occupied""#,
        RECV_REFUSAL,
    ),
    (
        "receive after delete",
        r#"refused at call: Unknown "stream not found""#,
        RECV_REFUSAL,
    ),
    (
        "writer ends its stream",
        "ok(success)",
        "a writer that half-closes gets the stream's descriptor, as SendStream's signature          says; aperture answers Unknown \"EOF\" (its handler returns the io.EOF it read).          Go's client never half-closes (it cancels), so no client depends on the error",
    ),
    (
        "message above our limit, below aperture's",
        "refused at call: ResourceExhausted",
        "our relay bounds every message (max_message_bytes, 128 KiB by default; an LNC GBN          packet is at most 32 KiB + headers); aperture takes up to grpc-go's 4 MiB",
    ),
    (
        "message above both limits",
        "refused at call: ResourceExhausted \"message too large:",
        "same code as grpc-go's; our text names our limit",
    ),
];

const VALIDATION: &str = "same text; the code is InvalidArgument where aperture's fmt.Errorf     gives Unknown (clients match the text, as Go's does)";

const RECV_REFUSAL: &str = "we refuse a RecvStream in the call's answer (trailers-only,     gRPC's usual refusal); aperture sends response headers first and the status after.     grpc-go clients see both the same way (the error comes from Recv); our GrpcMailbox     accepts both (aperture_quiet_recv_stream_opens_at_once)";

/// What a relay answered to one step.
#[derive(Clone, PartialEq, Eq)]
enum Answer {
    /// The call succeeded; what it gave (a message, "success", …).
    Ok(String),
    /// Refused when the call was made (trailers-only / error response).
    RefusedAtCall(tonic::Code, String),
    /// The call succeeded, then the stream's first item was the refusal.
    RefusedOnStream(tonic::Code, String),
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Ok(s) => write!(f, "ok({s})"),
            Answer::RefusedAtCall(c, m) => write!(f, "refused at call: {c:?} {m:?}"),
            Answer::RefusedOnStream(c, m) => write!(f, "refused on stream: {c:?} {m:?}"),
        }
    }
}

fn at_call(s: tonic::Status) -> Answer {
    Answer::RefusedAtCall(s.code(), s.message().to_owned())
}

/// A RecvStream call: its refusal (at call or as first item), or its first message.
async fn recv_first(c: &mut HashMailClient<Channel>, id: &[u8]) -> Answer {
    match tokio::time::timeout(T, c.recv_stream(desc(id)))
        .await
        .unwrap()
    {
        Err(s) => at_call(s),
        Ok(resp) => match tokio::time::timeout(T, resp.into_inner().next())
            .await
            .unwrap()
        {
            None => Answer::Ok("end of stream".into()),
            Some(Ok(m)) => Answer::Ok(format!("message {:?}", String::from_utf8_lossy(&m.msg))),
            Some(Err(s)) => Answer::RefusedOnStream(s.code(), s.message().to_owned()),
        },
    }
}

type Reading = tonic::Streaming<pb::CipherBox>;

/// A RecvStream call on its own task: the stream (if the call succeeded) and its first
/// item's [`Answer`].
fn spawn_reader(
    c: &HashMailClient<Channel>,
    id: &[u8],
) -> tokio::task::JoinHandle<(Option<Reading>, Answer)> {
    let mut c = c.clone();
    let id = id.to_vec();
    tokio::spawn(async move {
        match c.recv_stream(desc(&id)).await {
            Err(s) => (None, at_call(s)),
            Ok(resp) => {
                let mut s = resp.into_inner();
                let a = match s.next().await {
                    None => Answer::Ok("end of stream".into()),
                    Some(Ok(m)) => {
                        Answer::Ok(format!("message {:?}", String::from_utf8_lossy(&m.msg)))
                    }
                    Some(Err(e)) => Answer::RefusedOnStream(e.code(), e.message().to_owned()),
                };
                (Some(s), a)
            }
        }
    })
}

/// A SendStream call of `msgs` on `id`, ended by the client: the relay's answer.
async fn send_all(c: &mut HashMailClient<Channel>, id: &[u8], msgs: &[&[u8]]) -> Answer {
    let items: Vec<pb::CipherBox> = msgs.iter().map(|m| cbox(id, m)).collect();
    match tokio::time::timeout(T, c.send_stream(futures_util::stream::iter(items)))
        .await
        .unwrap()
    {
        Ok(_) => Answer::Ok("accepted".into()),
        Err(s) => at_call(s),
    }
}

fn unary<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Answer {
    match r {
        Ok(_) => Answer::Ok("success".into()),
        Err(s) => at_call(s),
    }
}

fn id(tag: u8) -> Vec<u8> {
    let mut v = vec![tag; 64];
    v[0] = 0xC0;
    v
}

/// The script. Each step's answer is recorded under its name, in order.
async fn script(relay: RelayClient) -> Vec<(&'static str, Answer)> {
    let mut c = relay.grpc().await;
    let mut out = Vec::new();
    let (a, missing) = (id(1), id(3));

    out.push(("create", unary(c.new_cipher_box(auth_req(&a)).await)));
    out.push(("create again", unary(c.new_cipher_box(auth_req(&a)).await)));
    let no_auth = pb::CipherBoxAuth {
        desc: Some(desc(&id(4))),
        auth: None,
    };
    out.push((
        "create without auth",
        unary(c.new_cipher_box(no_auth).await),
    ));
    let no_desc = pb::CipherBoxAuth {
        desc: None,
        auth: auth_req(&a).auth,
    };
    out.push((
        "create without descriptor",
        unary(c.new_cipher_box(no_desc).await),
    ));
    out.push((
        "create with empty id",
        unary(c.new_cipher_box(auth_req(&[])).await),
    ));
    out.push((
        "create with 3-byte id",
        unary(c.new_cipher_box(auth_req(&[1, 2, 3])).await),
    ));
    out.push((
        "receive from missing stream",
        recv_first(&mut c, &missing).await,
    ));
    out.push((
        "send to missing stream",
        send_all(&mut c, &missing, &[b"x"]).await,
    ));

    // A reader called before anything is written, then a writer: the message arrives.
    // (The reader runs as its own task: aperture sends a quiet stream's response headers
    // only with its first message, so the call itself completes only then.)
    let (mut reader, first) = {
        let reader_task = spawn_reader(&c, &a);
        let (tx, writer_task) = writer(&c);
        tx.send(cbox(&a, b"m1")).await.unwrap();
        let (reader, first) = tokio::time::timeout(T, reader_task).await.unwrap().unwrap();
        ((reader, tx, writer_task), first)
    };
    out.push(("receive called before send", first));
    // Both ends are now held: a second reader and a second writer are refused.
    out.push(("second reader", recv_first(&mut c, &a).await));
    out.push(("second writer", send_all(&mut c, &a, &[b"x"]).await));
    // The first pair still works after the refusals.
    let (reader_stream, tx, _) = &mut reader;
    tx.send(cbox(&a, b"m2")).await.unwrap();
    let second = match tokio::time::timeout(T, reader_stream.as_mut().unwrap().next())
        .await
        .unwrap()
    {
        Some(Ok(m)) => Answer::Ok(format!("message {:?}", String::from_utf8_lossy(&m.msg))),
        other => Answer::Ok(format!("{other:?}")),
    };
    out.push(("first pair after refusals", second));
    let (reader_stream, tx, writer_task) = reader;
    drop(tx);
    let ended = tokio::time::timeout(T, writer_task).await.unwrap().unwrap();
    out.push(("writer ends its stream", unary(ended)));
    drop(reader_stream);

    // Oversize messages, each on a fresh stream with a reader.
    for (name, len) in [
        ("message above our limit, below aperture's", 200 * 1024),
        ("message above both limits", 5 * 1024 * 1024),
    ] {
        let s = id(10 + (len % 200) as u8);
        let _ = c.new_cipher_box(auth_req(&s)).await;
        // A reader, so that a relay that takes the message has somewhere to put it.
        let _reader = spawn_reader(&c, &s);
        let big = vec![7u8; len];
        out.push((name, send_all(&mut c, &s, &[&big]).await));
    }

    out.push(("delete", unary(c.del_cipher_box(auth_req(&a)).await)));
    out.push(("receive after delete", recv_first(&mut c, &a).await));
    out.push(("delete again", unary(c.del_cipher_box(auth_req(&a)).await)));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_answers_like_aperture() {
    let mut go = GoProc::spawn("go-relay", &["--listen", "127.0.0.1:0", "--insecure"]);
    let ready = tokio::time::timeout(T, go.expect("READY"))
        .await
        .expect("go-relay did not start")
        .unwrap();
    let aperture_addr = field(&ready, "addr").unwrap();
    let aperture = script(RelayClient::new(aperture_addr, Trust::Insecure)).await;
    let relay = Relay::insecure().await;
    let ours = script(relay.client()).await;

    assert_eq!(aperture.len(), ours.len());
    let mut failures = Vec::new();
    for ((step, theirs), (_, mine)) in aperture.iter().zip(&ours) {
        let deviation = DEVIATIONS.iter().find(|(s, _, _)| s == step);
        println!(
            "CONFORMANCE {step:<45} aperture: {theirs:?}\n{:<57} ours:     {mine:?}",
            ""
        );
        match (theirs == mine, deviation) {
            (true, None) => {}
            (false, Some((_, want, why))) => {
                println!("  (deviation on purpose: {why})");
                if !format!("{mine:?}").starts_with(want) {
                    failures.push(format!(
                        "step '{step}': a named deviation, but we answered {mine:?}, \
                         expected {want}"
                    ));
                }
            }
            (false, None) => failures.push(format!(
                "step '{step}': aperture answered {theirs:?}, we answered {mine:?}"
            )),
            (true, Some(_)) => failures.push(format!(
                "step '{step}' is listed in DEVIATIONS but both answered {mine:?}: \
                 remove it from the list"
            )),
        }
    }
    for (step, _, _) in DEVIATIONS {
        if !ours.iter().any(|(s, _)| s == step) {
            failures.push(format!("DEVIATIONS names '{step}', which the script lacks"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
