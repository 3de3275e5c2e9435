//! Compiles proto/hashmail.proto with protox (pure Rust, no protoc) into prost
//! messages plus tonic client and server stubs (no tonic transport, so the crate
//! also builds for wasm32).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/hashmail.proto");
    let fds = protox::compile(["hashmail.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        .codec_path("crate::codec::SmallBufCodec")
        .bytes(".hashmailrpc")
        .compile_fds(fds)?;
    Ok(())
}
