//! Generates the gRPC code from `proto/ha.proto` with the vendored protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        // SAFETY: build scripts are single-threaded at this point.
        unsafe { std::env::set_var("PROTOC", protoc) };
    }
    println!("cargo:rerun-if-changed=proto/ha.proto");
    tonic_prost_build::configure().compile_protos(&["proto/ha.proto"], &["proto"])?;
    Ok(())
}
