//! Differential test against KubeRay's own validation (not a pass/fail test; run it with
//! `bash scripts/kuberay-h2h.sh` or
//! `RAYGATE_KUBERAY_BIN=$(bash scripts/kuberay-bin.sh) cargo bench --bench kuberay_diff -- --variants 5000 --seed 1`).
//!
//! Inputs: every RayCluster sample and `--variants` mutations of them (1–3 random edits each:
//! numbers set to -1/0/1/MaxInt32, strings emptied or made invalid/long, members deleted, worker
//! groups duplicated, min > max, names broken, ...), each with the CRD defaults applied (what the
//! API server does before anyone validates). KubeRay: `utils.ValidateRayClusterMetadata` then
//! `utils.ValidateRayClusterSpec` from `github.com/ray-project/kuberay/ray-operator` (through
//! `tools/kuberay diff`). raygate: `rules::validate`, first error among the rules that map to
//! those two functions (API-server-level `CRD-*`, raygate's own `RG-*`, the webhook-only `WH*`
//! and status `ST*` rules are reported separately). Prints agreement counts and every kind of
//! disagreement with a count and an example.
//! Without `--bench` (as under `cargo test --all-targets`) it does nothing.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn samples() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kuberay/samples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("samples dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read sample");
        // YAML 1.1 octals (`defaultMode: 0777`) as kubectl reads them.
        let opts = serde_saphyr::options! { legacy_octal_numbers: true };
        let docs: Vec<Value> =
            serde_saphyr::from_multiple_with_options(&text, opts).expect("sample YAML");
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        out.extend(
            docs.into_iter()
                .filter(|d| d["kind"] == "RayCluster")
                .map(|d| (name.clone(), ints(&d))),
        );
    }
    out
}

/// Integral floats as integers (Go's int32 fields refuse `777.0`; JSON from kubectl has `777`).
fn ints(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
            _ => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(ints).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), ints(x))).collect()),
        _ => v.clone(),
    }
}

/// JSON pointers of every leaf (and of every object member, for deletions) under `spec` and
/// `metadata`.
fn pointers(v: &Value, at: String, leaves: &mut Vec<String>, members: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                members.push(p.clone());
                pointers(x, p, leaves, members);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), leaves, members);
            }
        }
        _ => leaves.push(at),
    }
}

fn remove_at(v: &mut Value, ptr: &str) {
    if let Some((parent, last)) = ptr.rsplit_once('/')
        && let Some(Value::Object(m)) = v.pointer_mut(parent)
    {
        m.remove(&last.replace("~1", "/").replace("~0", "~"));
    }
}

/// One random edit; returns a short description.
fn mutate(obj: &mut Value, rng: &mut Rng) -> String {
    let (mut leaves, mut members) = (Vec::new(), Vec::new());
    pointers(&obj["spec"], "/spec".into(), &mut leaves, &mut members);
    pointers(
        &obj["metadata"],
        "/metadata".into(),
        &mut leaves,
        &mut members,
    );
    let groups = obj["spec"]["workerGroupSpecs"]
        .as_array()
        .map_or(0, Vec::len);
    match rng.below(10) {
        0 | 1 => {
            let nums: Vec<&String> = leaves
                .iter()
                .filter(|p| obj.pointer(p).is_some_and(Value::is_number))
                .collect();
            if nums.is_empty() {
                return "none".into();
            }
            let p = nums[rng.below(nums.len())].clone();
            let v = [json!(-1), json!(0), json!(1), json!(2_147_483_647)][rng.below(4)].clone();
            let d = format!("{p} = {v}");
            *obj.pointer_mut(&p).expect("leaf") = v;
            d
        }
        2 | 3 => {
            let strs: Vec<&String> = leaves
                .iter()
                .filter(|p| obj.pointer(p).is_some_and(Value::is_string))
                .collect();
            if strs.is_empty() {
                return "none".into();
            }
            let p = strs[rng.below(strs.len())].clone();
            let v = [
                json!(""),
                json!("INVALID_Value"),
                json!("x".repeat(70)),
                json!("true"),
                json!("-1"),
            ][rng.below(5)]
            .clone();
            let d = format!("{p} = {v}");
            *obj.pointer_mut(&p).expect("leaf") = v;
            d
        }
        4 => {
            if members.is_empty() {
                return "none".into();
            }
            let p = members[rng.below(members.len())].clone();
            remove_at(obj, &p);
            format!("delete {p}")
        }
        5 if groups > 0 => {
            let i = rng.below(groups);
            let g = obj["spec"]["workerGroupSpecs"][i].clone();
            obj["spec"]["workerGroupSpecs"]
                .as_array_mut()
                .expect("groups")
                .push(g);
            format!("duplicate workerGroupSpecs[{i}]")
        }
        6 if groups > 0 => {
            let i = rng.below(groups);
            let g = &mut obj["spec"]["workerGroupSpecs"][i];
            let max = g["maxReplicas"].as_i64().unwrap_or(5).min(1000);
            g["minReplicas"] = json!(max + 1);
            format!("workerGroupSpecs[{i}].minReplicas = maxReplicas + 1")
        }
        7 => {
            let n = ["Bad_Name", &"n".repeat(64), "a.b", "-x"][rng.below(4)].to_string();
            obj["metadata"]["name"] = json!(n);
            format!("metadata.name = {n:?}")
        }
        8 => {
            obj["spec"]["enableInTreeAutoscaling"] = json!(rng.below(2) == 0);
            let v = ["v1", "v2", "v3"][rng.below(3)];
            obj["spec"]["autoscalerOptions"]["version"] = json!(v);
            if groups > 0 && rng.below(2) == 0 {
                obj["spec"]["workerGroupSpecs"][0]["idleTimeoutSeconds"] = json!(30);
            }
            format!(
                "autoscaling {} / version {v}",
                obj["spec"]["enableInTreeAutoscaling"]
            )
        }
        _ => {
            let ann = [
                "ray.io/ft-enabled",
                "ray.io/external-storage-namespace",
                "ray.io/enable-serve-service",
            ][rng.below(3)];
            obj["metadata"]["annotations"][ann] = json!(["true", "false", "x"][rng.below(3)]);
            if rng.below(2) == 0 {
                obj["spec"]["gcsFaultToleranceOptions"] = json!({"redisAddress": "redis:6379"});
            }
            format!("annotation {ann} (+maybe gcsFaultToleranceOptions)")
        }
    }
}

/// (outcome, raygate rule, normalized KubeRay message) -> (count, example input, raygate error,
/// KubeRay error).
type Groups = BTreeMap<(String, String, String), (usize, String, String, String)>;

/// Rules that correspond to KubeRay's ValidateRayClusterMetadata + ValidateRayClusterSpec.
fn is_utils_rule(id: &str) -> bool {
    !(id.starts_with("CRD-")
        || id.starts_with("RG-")
        || id.starts_with("WH")
        || id.starts_with("ST")
        || id.starts_with("W-"))
}

fn normalize(msg: &str) -> String {
    // Collapse numbers and quoted names so one kind of disagreement is one group.
    let mut out = String::new();
    let mut in_quote = false;
    for c in msg.chars() {
        if c == '"' {
            in_quote = !in_quote;
            out.push('"');
            if in_quote {
                out.push('…');
            }
            continue;
        }
        if in_quote {
            continue;
        }
        if c.is_ascii_digit() {
            if !out.ends_with('#') {
                out.push('#');
            }
            continue;
        }
        out.push(c);
    }
    out.chars().take(140).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("kuberay_diff: differential run only under cargo bench (scripts/kuberay-h2h.sh)");
        return;
    }
    let arg = |name: &str, d: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let variants = arg("--variants", 5000) as usize;
    let mut rng = Rng(arg("--seed", 1).max(1));
    let bin = std::env::var("RAYGATE_KUBERAY_BIN")
        .expect("RAYGATE_KUBERAY_BIN (scripts/kuberay-bin.sh builds it)");
    let version = Command::new(&bin)
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .expect("kuberay version");

    let base = samples();
    let mut inputs: Vec<(String, Value)> = Vec::new();
    for (f, s) in &base {
        inputs.push((format!("{f} (as is)"), s.clone()));
    }
    for _ in 0..variants {
        let (f, s) = &base[rng.below(base.len())];
        let mut o = s.clone();
        let n = 1 + rng.below(3);
        let edits: Vec<String> = (0..n).map(|_| mutate(&mut o, &mut rng)).collect();
        inputs.push((format!("{f}: {}", edits.join("; ")), o));
    }
    for (_, o) in inputs.iter_mut() {
        raygate::defaulting::apply_crd_defaults(o);
    }

    let mut child = Command::new(&bin)
        .arg("diff")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start kuberay diff");
    let mut stdin = child.stdin.take().expect("stdin");
    let lines: Vec<String> = inputs
        .iter()
        .map(|(_, o)| serde_json::to_string(o).expect("json"))
        .collect();
    let writer = std::thread::spawn(move || {
        for l in lines {
            writeln!(stdin, "{l}").expect("write to kuberay diff");
        }
    });
    let out = child.wait_with_output().expect("kuberay diff");
    writer.join().expect("writer");
    let kuberay: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("kuberay diff output"))
        .collect();
    assert_eq!(kuberay.len(), inputs.len(), "one answer per input");

    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut groups: Groups = BTreeMap::new();
    for ((desc, obj), k) in inputs.iter().zip(&kuberay) {
        let all = raygate::rules::validate(obj, None, &Default::default());
        let api_level = all
            .iter()
            .find(|v| v.is_error() && v.rule.starts_with("CRD-"));
        let ours = all.iter().find(|v| v.is_error() && is_utils_rule(&v.rule));
        let theirs = k["error"].as_str();
        let decode = k["parse"].as_str();
        let cat = match (ours, theirs, decode) {
            (_, _, Some(_)) => {
                "KubeRay's Go types cannot decode it (the API server refuses it too)"
            }
            (None, None, _) => "agree: valid",
            (Some(v), Some(t), _) if t.contains(v.message.as_str()) => {
                "agree: invalid, same message"
            }
            (Some(_), Some(_), _) => "agree: invalid, different message",
            (Some(_), None, _) => "DISAGREE: only raygate refuses",
            // e.g. `metadata.name: ""`: the API server refuses it before KubeRay could see it,
            // and raygate reports it at that level (CRD-REQUIRED), not as a KubeRay rule.
            (None, Some(_), _) if api_level.is_some() => {
                "agree: invalid, raygate refuses it at the API server level"
            }
            (None, Some(_), _) => "DISAGREE: only KubeRay refuses",
        };
        *counts.entry(cat).or_default() += 1;
        if cat.starts_with("agree: valid") || cat == "agree: invalid, same message" {
            continue;
        }
        let key = (
            cat.to_string(),
            ours.map_or("-".into(), |v| v.rule.clone()),
            normalize(theirs.or(decode).unwrap_or("-")),
        );
        let e = groups.entry(key).or_insert_with(|| {
            (
                0,
                desc.clone(),
                ours.map_or("-".into(), |v| format!("{}: {}", v.path, v.message)),
                format!(
                    "{}{}",
                    theirs.or(decode).unwrap_or("-"),
                    api_level.map_or(String::new(), |v| format!(
                        " [API server level: {} {}]",
                        v.rule, v.path
                    ))
                ),
            )
        });
        e.0 += 1;
    }
    println!(
        "KubeRay ray-operator {version} (tools/kuberay diff) vs raygate: {} inputs ({} samples + {variants} variants)\n",
        inputs.len(),
        base.len()
    );
    println!("| outcome | inputs |\n|---|---|");
    for (c, n) in &counts {
        println!("| {c} | {n} |");
    }
    println!(
        "\n| outcome | raygate rule | count | example input | raygate first error | KubeRay first error |\n|---|---|---|---|---|---|"
    );
    for ((cat, rule, _), (n, desc, ours, theirs)) in &groups {
        let esc = |s: &str| s.replace('|', "\\|").chars().take(220).collect::<String>();
        println!(
            "| {cat} | {rule} | {n} | {} | {} | {} |",
            esc(desc),
            esc(ours),
            esc(theirs)
        );
    }
}
