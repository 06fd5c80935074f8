//! Generate the CRI messages and both services (server for the daemon, client for the tests)
//! from the vendored runtime.v1 proto. protoc comes from Debian's protobuf-compiler
//! (scripts/setup.sh installs it); `PROTOC` overrides.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/api.proto");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(false)
        .compile_protos(&["proto/api.proto"], &["proto"])?;
    Ok(())
}
