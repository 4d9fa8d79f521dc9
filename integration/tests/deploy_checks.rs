//! `deploy/` checked: the systemd units pass `systemd-analyze verify` (warnings included) and
//! score as hardened in `systemd-analyze security`; the Kubernetes manifests validate against the
//! Kubernetes schemas (`kubernetes-validate`, offline, strict); the container images build without
//! pulling anything and the compose cluster of three hosts works: every daemon lists the three
//! nodes, the nodes form a mesh, a host cut off the network (`docker network disconnect`) and a
//! paused node (`docker pause`) are declared down by the others within ticktime, and everything is
//! torn down, also on failure. The tools come from `.ci/run`; a test whose tool is missing fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use snow_integration::tmp::{random_cookie, write_secret, TempDir};

const EPMD: &str = env!("CARGO_BIN_EXE_snow-epmd-it");
const NODE: &str = env!("CARGO_BIN_EXE_snow-test-node");

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Runs `cmd`; its output, or a panic naming the tool `.ci/run` installs if it cannot start.
fn run(mut cmd: Command, tool: &str) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {tool} ({e}); .ci/run installs it"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The units with their program paths pointed at this build's binaries (verify checks that
/// ExecStart's program exists); nothing else is changed.
fn units_for_verify(dir: &Path) -> Vec<PathBuf> {
    let systemd = deploy_dir().join("systemd");
    let epmd_unit = std::fs::read_to_string(systemd.join("snow-epmd.service")).unwrap();
    let node_unit = std::fs::read_to_string(systemd.join("snow-node@.service")).unwrap();
    assert!(
        epmd_unit.contains("ExecStart=/usr/local/bin/snow-epmd ")
            && node_unit.contains("ExecStart=/usr/local/lib/snow/%i\n")
    );
    let epmd = dir.join("snow-epmd.service");
    std::fs::write(&epmd, epmd_unit.replace("/usr/local/bin/snow-epmd", EPMD)).unwrap();
    // An instance, as systemd would load it for `systemctl start snow-node@app`, with its drop-in.
    let node = dir.join("snow-node@app.service");
    std::fs::write(&node, node_unit.replace("/usr/local/lib/snow/%i", NODE)).unwrap();
    let dropins = dir.join("snow-node@app.service.d");
    std::fs::create_dir_all(&dropins).unwrap();
    std::fs::copy(systemd.join("snow-node@.service.d/tls.conf"), dropins.join("tls.conf")).unwrap();
    vec![epmd, node]
}

/// `systemd-analyze verify` finds nothing to say about either unit (an unknown key or a bad value
/// is only a warning there, so any output fails the test), and `systemd-analyze security` rates
/// each at most 2.0 ("OK"; 10 is fully exposed).
#[test]
fn systemd_units_verify_cleanly_and_are_hardened() {
    let dir = TempDir::new("units").unwrap();
    for unit in units_for_verify(dir.path()) {
        let mut cmd = Command::new("systemd-analyze");
        cmd.args(["verify", "--man=no"]).arg(&unit).current_dir(dir.path());
        let out = run(cmd, "systemd-analyze (Debian's systemd)");
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "systemd-analyze verify {}: {}\n{}{}",
            unit.display(),
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        let mut cmd = Command::new("systemd-analyze");
        cmd.args(["security", "--offline=true", "--no-pager"]).arg(unit.file_name().unwrap()).current_dir(dir.path());
        let out = run(cmd, "systemd-analyze (Debian's systemd)");
        let report = text(&out.stdout);
        let exposure: f64 = report
            .lines()
            .find_map(|l| l.split("Overall exposure level for ").nth(1))
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|score| score.parse().ok())
            .unwrap_or_else(|| panic!("no exposure level in: {report}{}", text(&out.stderr)));
        eprintln!("{}: exposure {exposure}", unit.display());
        assert!(exposure <= 2.0, "{} is exposed ({exposure}):\n{report}", unit.display());
    }
}

/// Every manifest validates against Kubernetes 1.30's schemas, strictly (unknown fields are
/// errors); the probes run programs the node image has, and the images are the ones
/// build-images.sh makes.
#[test]
fn kubernetes_manifests_validate_against_the_schemas() {
    let dir = deploy_dir().join("kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "manifests in {}: {files:?}", dir.display());
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "kubernetes_validate", "--strict", "--kubernetes-version", "1.30.0"]).args(&files);
    let out = run(cmd, "kubernetes-validate (PyPI)");
    assert!(out.status.success(), "kubernetes-validate:\n{}{}", text(&out.stdout), text(&out.stderr));
    let cluster = std::fs::read_to_string(dir.join("snow-cluster.yaml")).unwrap();
    let recipe = std::fs::read_to_string(deploy_dir().join("container/build-images.sh")).unwrap();
    for image in ["snow-epmd:", "snow-node:"] {
        assert!(
            cluster.contains(&format!("image: {image}")) && recipe.contains(&format!("\"{image}$tag\"")),
            "{image}"
        );
    }
    assert!(cluster.matches("command: [\"/usr/local/bin/snow-epmd\"").count() >= 4, "probes talk to the daemon");
    assert!(recipe.contains("/usr/local/bin/snow-epmd"), "the images hold /usr/local/bin/snow-epmd");
}

/// Docker and Compose, or a panic saying what is missing.
fn require_docker() {
    for (tool, args) in
        [("docker", &["info", "--format", "{{.ServerVersion}}"][..]), ("docker-compose", &["version"][..])]
    {
        let mut cmd = Command::new(tool);
        cmd.args(args);
        let out = run(cmd, tool);
        assert!(out.status.success(), "{tool} does not work here: {}", text(&out.stderr));
    }
}

/// Removes the images and the compose project (containers, network, volumes) when dropped.
struct DockerGuard {
    tag: String,
    compose: Option<Vec<String>>,
}

impl Drop for DockerGuard {
    fn drop(&mut self) {
        if let Some(args) = &self.compose {
            let out =
                Command::new("docker-compose").args(args).args(["down", "-v", "--remove-orphans", "-t", "1"]).output();
            match out {
                Ok(out) if !out.status.success() => eprintln!("cleanup: docker-compose down: {}", text(&out.stderr)),
                Ok(_) => {}
                Err(e) => eprintln!("cleanup: cannot run docker-compose down: {e}"),
            }
        }
        let images = [format!("snow-epmd:{}", self.tag), format!("snow-node:{}", self.tag)];
        let _ = Command::new("docker").args(["rmi", "-f"]).args(&images).output();
    }
}

/// The compose project of one test run.
struct Compose {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Compose {
    fn run(&self, extra: &[&str]) -> Output {
        let mut cmd = Command::new("docker-compose");
        cmd.args(&self.args).args(extra).envs(self.env.iter().map(|(k, v)| (k, v)));
        run(cmd, "docker-compose")
    }

    fn container(&self, service: &str) -> String {
        let out = self.run(&["ps", "-q", service]);
        let id = text(&out.stdout).trim().to_owned();
        assert!(!id.is_empty(), "no container for {service}: {}", text(&out.stderr));
        id
    }
}

fn docker(args: &[&str]) -> Output {
    let mut cmd = Command::new("docker");
    cmd.args(args);
    run(cmd, "docker")
}

/// How many lines of `container`'s output are exactly `line`.
fn log_count(container: &str, line: &str) -> usize {
    let out = docker(&["logs", container]);
    text(&out.stdout).lines().filter(|l| *l == line).count()
}

fn wait(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    start.elapsed()
}

/// The nodes' ticktime in this test.
const TICK: u64 = 2;

/// The compose cluster of deploy/compose with images built here. The node program is the test
/// node (it connects to the peers named in SNOW_TEST_CONNECT and prints NODEUP/NODEDOWN, which
/// the test reads from `docker logs`; the echo example never connects by itself). Expected:
/// every daemon lists the three nodes up within 30 s of `up` (nodes restart until their daemon
/// listens); the nodes form a mesh; `snow-epmd lookup` run in a node container finds that node
/// (the Kubernetes readiness probe); host 3 disconnected from the network is declared down by
/// hosts 1 and 2 within ticktime + 3 s, and reachable again by `snow-epmd ping` once reconnected;
/// host 2's node paused is declared down by host 1 within ticktime + 3 s.
#[test]
fn compose_cluster_lists_meshes_and_survives_a_partition_and_a_pause() {
    require_docker();
    let pid = std::process::id();
    let tag = format!("test{pid}");
    // Before the guard, so that it drops after it: `docker-compose down` reads the files here.
    let dir = TempDir::new("compose").unwrap();
    let mut guard = DockerGuard { tag: tag.clone(), compose: None };
    let built = Instant::now();
    let out = run(
        {
            let mut cmd = Command::new(deploy_dir().join("container/build-images.sh"));
            cmd.args([EPMD, NODE, &tag]);
            cmd
        },
        "bash",
    );
    assert!(out.status.success(), "build-images.sh: {}{}", text(&out.stdout), text(&out.stderr));
    let build_time = built.elapsed();

    let cookie = dir.join("cookie");
    write_secret(&cookie, random_cookie().as_bytes()).unwrap();
    std::os::unix::fs::chown(&cookie, Some(10001), Some(10001)).unwrap();
    let test_file = dir.join("test.yml");
    let mut overrides = String::from("services:\n");
    for (n, connect) in [(1, ""), (2, "app@host1"), (3, "app@host1")] {
        overrides +=
            &format!("  node{n}:\n    stdin_open: true\n    environment:\n      SNOW_TEST_CONNECT: \"{connect}\"\n");
    }
    std::fs::write(&test_file, overrides).unwrap();
    let project = format!("snowtest{pid}");
    let compose = Compose {
        args: vec![
            "-p".into(),
            project.clone(),
            "-f".into(),
            deploy_dir().join("compose/docker-compose.yml").to_string_lossy().into_owned(),
            "-f".into(),
            test_file.to_string_lossy().into_owned(),
        ],
        env: vec![
            ("SNOW_TAG".into(), tag.clone()),
            ("SNOW_COOKIE_FILE".into(), cookie.to_string_lossy().into_owned()),
            ("SNOW_TICKTIME".into(), TICK.to_string()),
        ],
    };
    guard.compose = Some(compose.args.clone());
    let up = Instant::now();
    let out = compose.run(&["up", "-d"]);
    assert!(out.status.success(), "docker-compose up: {}", text(&out.stderr));

    let epmds: Vec<String> = (1..=3).map(|n| compose.container(&format!("epmd{n}"))).collect();
    let nodes: Vec<String> = (1..=3).map(|n| compose.container(&format!("node{n}"))).collect();
    let apps = ["app@host1", "app@host2", "app@host3"];
    let listed = wait("every daemon lists the three nodes up", Duration::from_secs(30), || {
        epmds.iter().all(|c| {
            let out = docker(&["exec", c, "snow-epmd", "list"]);
            let table = text(&out.stdout);
            apps.iter().all(|a| table.lines().any(|l| l.starts_with(a) && l.split_whitespace().nth(4) == Some("up")))
        })
    });
    let meshed = wait("the three nodes form a mesh", Duration::from_secs(30), || {
        (0..3).all(|i| {
            apps.iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .all(|(_, a)| log_count(&nodes[i], &format!("NODEUP {a}")) >= 1)
        })
    });
    for node in &nodes {
        let out = docker(&["exec", node, "snow-epmd", "lookup"]);
        assert!(out.status.success(), "snow-epmd lookup in a node container: {}", text(&out.stderr));
    }
    eprintln!(
        "compose: images built in {build_time:?}; after `up -d` returned, every daemon listed all nodes in \
         {listed:?} and the mesh formed {meshed:?} later ({:?} after `up -d` started)",
        up.elapsed()
    );

    let network = format!("{project}_snow");
    let out = docker(&["network", "disconnect", &network, &epmds[2]]);
    assert!(out.status.success(), "docker network disconnect: {}", text(&out.stderr));
    let within = Duration::from_secs(TICK + 3);
    let partition = wait("hosts 1 and 2 declare host 3 down", within, || {
        log_count(&nodes[0], "NODEDOWN app@host3") >= 1 && log_count(&nodes[1], "NODEDOWN app@host3") >= 1
    });
    let out = docker(&["network", "connect", "--alias", "host3", &network, &epmds[2]]);
    assert!(out.status.success(), "docker network connect: {}", text(&out.stderr));
    let reconnected = wait("host 1 pings host 3's node again", Duration::from_secs(20), || {
        docker(&["exec", &epmds[0], "snow-epmd", "ping", "app@host3", "--cookie-file", "/run/secrets/cookie"])
            .status
            .success()
    });

    let out = docker(&["pause", &nodes[1]]);
    assert!(out.status.success(), "docker pause: {}", text(&out.stderr));
    let paused =
        wait("host 1 declares the paused node down", within, || log_count(&nodes[0], "NODEDOWN app@host2") >= 1);
    let out = docker(&["unpause", &nodes[1]]);
    assert!(out.status.success(), "docker unpause: {}", text(&out.stderr));
    eprintln!(
        "compose: host 3 cut off declared down in {partition:?}, reachable {reconnected:?} after reconnecting; \
         paused node declared down in {paused:?} (bound {within:?})"
    );
    drop(guard);
}
