//! Compiles `proto/*.proto` (raygate's minimal Ray GCS messages) into Rust with protox, a
//! pure-Rust protobuf compiler, so building raygate needs no `protoc`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/ray_autoscaler.proto"];
    for f in ["proto/ray_autoscaler.proto", "proto/ray_common.proto"] {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
