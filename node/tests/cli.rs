//! The operator's commands, run as the real `imi-node` binary.

use std::path::Path;
use std::process::{Command, Output};

fn imi_node(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imi-node"))
        .args(args)
        .current_dir(dir)
        .env("IMI_PASSWORD", "correct horse battery staple")
        .env_remove("IMI_CONFIG")
        .output()
        .expect("imi-node runs")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = imi_node(dir, args);
    assert!(
        out.status.success(),
        "imi-node {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let out = imi_node(dir, args);
    assert!(
        !out.status.success(),
        "imi-node {args:?} should have failed"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_two_country_federation_is_certified_with_the_certs_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["certs", "root-init", "--out", "root"]);
    for (cc, name) in [("FI", "fi-1"), ("PT", "pt-1")] {
        let ca = format!("ca-{cc}");
        ok(
            d,
            &[
                "certs",
                "issue-national",
                "--root",
                "root",
                "--country",
                cc,
                "--out",
                &ca,
            ],
        );
        ok(d, &["init", "--country", cc, "--name", name, "--dir", name]);
        let config = format!("{name}/imi-node.toml");
        let csr = format!("{name}.csr");
        ok(d, &["certs", "request", "-c", &config, "--out", &csr]);
        let cert = format!("{name}/certs/node.pem");
        let issued = ok(
            d,
            &[
                "certs",
                "issue-node",
                "--ca",
                &ca,
                "--request",
                &csr,
                "--out",
                &cert,
            ],
        );
        assert!(issued.contains(&format!("{cc}/{name}")), "{issued}");
        std::fs::copy(d.join("root/root.pem"), d.join(name).join("certs/root.pem")).unwrap();
        std::fs::copy(
            d.join(&ca).join("ca.pem"),
            d.join(name).join("certs/national-ca.pem"),
        )
        .unwrap();
        let shown = ok(d, &["certs", "show", &cert]);
        assert!(shown.contains(&format!("node {cc}/{name}")), "{shown}");
    }
    // The key file is the owner's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("fi-1/node-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A national CA cannot certify another country's node.
    let err = fails(
        d,
        &[
            "certs",
            "issue-node",
            "--ca",
            "ca-FI",
            "--request",
            "pt-1.csr",
            "--out",
            "x.pem",
        ],
    );
    assert!(err.contains("PT") && err.contains("FI"), "{err}");
    // Revocation writes a list into a node's revocations directory.
    let revoked = ok(
        d,
        &[
            "certs",
            "revoke",
            "--ca",
            "ca-PT",
            "--cert",
            "pt-1/certs/node.pem",
            "--install-into",
            "fi-1/certs/revocations",
        ],
    );
    assert!(revoked.contains("revocation list number 1"), "{revoked}");
    assert!(
        d.join("fi-1/certs/revocations/national-PT.crl.pem")
            .exists()
    );
    let shown = ok(
        d,
        &[
            "certs",
            "show",
            "fi-1/certs/revocations/national-PT.crl.pem",
        ],
    );
    assert!(shown.contains("revoked:"), "{shown}");
    // A node directory is not created twice.
    let err = fails(
        d,
        &["init", "--country", "FI", "--name", "fi-1", "--dir", "fi-1"],
    );
    assert!(err.contains("exists already"), "{err}");
    let err = fails(d, &["init", "--country", "XX", "--name", "x", "--dir", "x"]);
    assert!(err.contains("unknown country code"), "{err}");
}

#[test]
fn the_coordinator_manages_authorities_and_users_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &["init", "--country", "PT", "--name", "pt-1", "--dir", "pt"],
    );
    let c = "pt/imi-node.toml";
    let created = ok(
        d,
        &[
            "coordinator",
            "-c",
            c,
            "init",
            "--login",
            "ana",
            "--name",
            "Ana Costa",
            "--email",
            "ana@example.pt",
        ],
    );
    let authority = created.split_whitespace().last().unwrap().to_owned();
    let listed = ok(d, &["authority", "-c", c, "list", "--status", "active"]);
    assert!(listed.contains(&authority), "{listed}");
    // The coordinators' authority has no substitute yet.
    let warnings = ok(d, &["warnings", "-c", c]);
    assert!(
        warnings.contains("no active user handling requests"),
        "{warnings}"
    );
    ok(
        d,
        &[
            "user",
            "-c",
            c,
            "add",
            "--authority",
            &authority,
            "--login",
            "rui",
            "--name",
            "Rui Sousa",
            "--email",
            "rui@example.pt",
            "--language",
            "pt",
            "--role",
            "professional-qualifications=request-handler",
            "--as",
            "ana",
        ],
    );
    let users = ok(d, &["user", "-c", c, "list", &authority]);
    assert!(users.contains("rui  active"), "{users}");
    let err = fails(
        d,
        &[
            "user",
            "-c",
            c,
            "add",
            "--authority",
            &authority,
            "--login",
            "rui",
            "--name",
            "Other",
            "--email",
            "o@example.pt",
            "--language",
            "pt",
            "--as",
            "ana",
        ],
    );
    assert!(err.contains("already taken"), "{err}");
    ok(d, &["user", "-c", c, "deactivate", "rui", "--as", "ana"]);
    let users = ok(d, &["user", "-c", c, "list", &authority]);
    assert!(users.contains("rui  deactivated"), "{users}");
    let status = ok(d, &["status", "-c", c, "--json"]);
    assert!(status.contains("\"outbox\": 0"), "{status}");
}

#[test]
fn a_national_coordinator_issues_the_web_ui_its_https_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["certs", "root-init", "--out", "root"]);
    ok(
        d,
        &[
            "certs",
            "issue-national",
            "--root",
            "root",
            "--country",
            "FI",
            "--out",
            "ca-FI",
        ],
    );
    // No web CA yet: the error says how to make one.
    let err = fails(
        d,
        &[
            "certs",
            "issue-web",
            "--ca",
            "ca-FI",
            "--host",
            "imi.example.fi",
            "--out",
            "fi-1/certs",
        ],
    );
    assert!(err.contains("certs issue-web-ca"), "{err}");
    let created = ok(
        d,
        &[
            "certs",
            "issue-web-ca",
            "--ca",
            "ca-FI",
            "--domain",
            "example.fi",
        ],
    );
    assert!(created.contains("national web CA of FI"), "{created}");
    assert!(created.contains("browsers"), "{created}");
    let shown = ok(d, &["certs", "show", "ca-FI/web-ca.pem"]);
    assert!(shown.contains("national web CA of FI"), "{shown}");
    assert!(shown.contains("example.fi"), "{shown}");
    // The browsers trust it: it is not replaced by mistake.
    let err = fails(
        d,
        &[
            "certs",
            "issue-web-ca",
            "--ca",
            "ca-FI",
            "--domain",
            "example.fi",
        ],
    );
    assert!(err.contains("already"), "{err}");

    let issued = ok(
        d,
        &[
            "certs",
            "issue-web",
            "--ca",
            "ca-FI",
            "--host",
            "imi.example.fi",
            "--out",
            "fi-1/certs",
        ],
    );
    assert!(issued.contains("imi.example.fi"), "{issued}");
    assert!(issued.contains("tls = {"), "{issued}");
    let chain = std::fs::read_to_string(d.join("fi-1/certs/web.pem")).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "{chain}");
    let shown = ok(d, &["certs", "show", "fi-1/certs/web.pem"]);
    assert!(
        shown.contains("web UI certificate for imi.example.fi"),
        "{shown}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in ["fi-1/certs/web-key.pem", "ca-FI/web-ca-key.pem"] {
            let mode = std::fs::metadata(d.join(key)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }
    // A name outside the web CA's domains, or no name at all, is refused.
    let err = fails(
        d,
        &[
            "certs",
            "issue-web",
            "--ca",
            "ca-FI",
            "--host",
            "imi.example.com",
            "--out",
            "x",
        ],
    );
    assert!(err.contains("example.fi only"), "{err}");
    let err = fails(
        d,
        &[
            "certs",
            "issue-web",
            "--ca",
            "ca-FI",
            "--host",
            "192.0.2.1",
            "--out",
            "x",
        ],
    );
    assert!(err.contains("not a DNS host name"), "{err}");
}

#[test]
fn the_operator_creates_lists_and_revokes_api_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &["init", "--country", "PT", "--name", "pt-1", "--dir", "pt"],
    );
    let c = "pt/imi-node.toml";
    ok(
        d,
        &[
            "coordinator",
            "-c",
            c,
            "init",
            "--login",
            "ana",
            "--name",
            "Ana Costa",
            "--email",
            "ana@example.pt",
        ],
    );
    let token = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["token", "-c", c];
        all.extend(args);
        all.into_iter().map(str::to_owned).collect()
    };
    let run = |args: Vec<String>| ok(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let refused =
        |args: Vec<String>| fails(d, &args.iter().map(String::as_str).collect::<Vec<_>>());

    let created = run(token(&[
        "create",
        "--login",
        "ana",
        "--name",
        "national register",
    ]));
    let id = created
        .split_whitespace()
        .nth(2)
        .expect("the id follows \"API token\"")
        .to_owned();
    assert_eq!(id.len(), 26, "{created}");
    let secret = created
        .split_whitespace()
        .find(|word| word.starts_with("imi_"))
        .expect("the secret is printed")
        .to_owned();
    assert_eq!(secret.len(), 47, "{created}");

    let listed = run(token(&["list", "--login", "ana"]));
    assert!(listed.contains(&id), "{listed}");
    assert!(listed.contains("national register"), "{listed}");
    assert!(listed.contains("never used"), "{listed}");
    assert!(!listed.contains(&secret), "{listed}");

    // Bad input is refused with the reason, and creates nothing.
    for (args, reason) in [
        (&["--days", "0"][..], "--days must be from 1 to 366"),
        (&["--days", "367"][..], "--days must be from 1 to 366"),
        (&["--name", " "][..], "give the token a name"),
    ] {
        let mut create = vec!["create", "--login", "ana"];
        if !args.contains(&"--name") {
            create.extend(["--name", "spare"]);
        }
        create.extend(args);
        let err = refused(token(&create));
        assert!(err.contains(reason), "{args:?}: {err}");
    }
    let err = refused(token(&["create", "--login", "nobody", "--name", "x"]));
    assert!(err.contains("no user \"nobody\""), "{err}");
    assert_eq!(run(token(&["list", "--login", "ana"])).lines().count(), 1);

    let revoked = run(token(&["revoke", &id]));
    assert!(revoked.contains("revoked"), "{revoked}");
    assert!(revoked.contains("ana"), "{revoked}");
    let listed = run(token(&["list", "--login", "ana"]));
    assert!(listed.contains("ana has no API tokens"), "{listed}");
    let err = refused(token(&["revoke", &id]));
    assert!(err.contains("no API token"), "{err}");
    let err = refused(token(&["revoke", "not-a-token"]));
    assert!(err.contains("not a token id"), "{err}");
}

#[test]
fn a_coordinator_registers_an_authority_from_the_command_line_and_its_id_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &["init", "--country", "PT", "--name", "pt-1", "--dir", "pt"],
    );
    let c = "pt/imi-node.toml";
    ok(
        d,
        &[
            "coordinator",
            "-c",
            c,
            "init",
            "--login",
            "ana",
            "--name",
            "Ana Costa",
            "--email",
            "ana@example.pt",
        ],
    );
    let register = |extra: &[&str]| {
        let mut args = vec![
            "authority",
            "-c",
            c,
            "register",
            "--name",
            "pt=Ordem dos Farmacêuticos",
            "--name",
            "en=Portuguese Pharmaceutical Society",
            "--area",
            "professional-qualifications",
            "--language",
            "pt",
            "--email",
            "imi@ordemfarmaceuticos.pt.example",
            "--as",
            "ana",
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let pending = ok(
        d,
        &register(&[]).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(pending.contains("pending approval"), "{pending}");
    let pending_id = pending.split_whitespace().nth(1).unwrap().to_owned();
    let listed = ok(d, &["authority", "-c", c, "list", "--status", "pending"]);
    assert!(
        listed.contains(&pending_id) && listed.contains("Pending"),
        "{listed}"
    );
    let approved = ok(
        d,
        &register(&["--approve"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let approved_id = approved.split_whitespace().nth(1).unwrap().to_owned();
    let active = ok(d, &["authority", "-c", c, "list", "--status", "active"]);
    assert!(active.contains(&approved_id), "{active}");
    // A name without its language, and an area the catalogue does not
    // have, are refused and register nothing.
    let err = fails(
        d,
        &[
            "authority",
            "-c",
            c,
            "register",
            "--name",
            "Ordem",
            "--area",
            "professional-qualifications",
            "--language",
            "pt",
            "--as",
            "ana",
        ],
    );
    assert!(err.contains("LANG=NAME"), "{err}");
    let err = fails(
        d,
        &[
            "authority",
            "-c",
            c,
            "register",
            "--name",
            "pt=Ordem",
            "--area",
            "astrology",
            "--language",
            "pt",
            "--as",
            "ana",
        ],
    );
    assert!(!err.is_empty());
    let all = ok(d, &["authority", "-c", c, "list"]);
    assert_eq!(all.lines().count(), 3, "{all}");
}

#[test]
fn a_backup_never_overwrites_a_file_unless_told_to() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &["init", "--country", "PT", "--name", "pt-1", "--dir", "pt"],
    );
    let c = "pt/imi-node.toml";
    ok(
        d,
        &[
            "coordinator",
            "-c",
            c,
            "init",
            "--login",
            "ana",
            "--name",
            "Ana Costa",
            "--email",
            "ana@example.pt",
        ],
    );
    std::fs::write(d.join("precious.redb"), b"yesterday's backup").unwrap();
    let err = fails(d, &["backup", "-c", c, "--out", "precious.redb"]);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(
        std::fs::read(d.join("precious.redb")).unwrap(),
        b"yesterday's backup"
    );
    ok(d, &["backup", "-c", c, "--out", "precious.redb", "--force"]);
    assert_ne!(
        std::fs::read(d.join("precious.redb")).unwrap(),
        b"yesterday's backup"
    );
}
