//! A test PKI made with the openssl command: a CA and a server certificate signed by it.

use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`{name}-ca.pem`) and a server certificate for `dns` signed by it (`{name}.pem`,
/// `{name}-key.pem`).
pub fn make_pki(dir: &Path, name: &str, dns: &str) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let ca_key = format!("{name}-ca-key.pem");
    let ca = format!("{name}-ca.pem");
    let mut args = vec!["req", "-x509"];
    args.extend_from_slice(&ec);
    args.extend_from_slice(&[
        "-keyout",
        &ca_key,
        "-out",
        &ca,
        "-days",
        "2",
        "-subj",
        "/CN=test ca",
    ]);
    openssl(dir, &args);
    let key = format!("{name}-key.pem");
    let csr = format!("{name}.csr");
    let subject = format!("/CN={dns}");
    let mut args = vec!["req"];
    args.extend_from_slice(&ec);
    args.extend_from_slice(&["-keyout", &key, "-out", &csr, "-subj", &subject]);
    openssl(dir, &args);
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        format!("subjectAltName=DNS:{dns}\nbasicConstraints=CA:FALSE\n"),
    )
    .expect("write ext");
    let cert = format!("{name}.pem");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
}
