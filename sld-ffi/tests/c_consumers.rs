//! The C ABI from the outside: `tests/c/consumer.c` and
//! `tests/c/consumer.cpp` compiled against `include/sld.h`, linked to the
//! static and the shared library, and run under valgrind on a known-answer
//! kit (`sld_train::beacon`: a model and an image rendered from a known
//! pose). Also: the firmware (`no_std`) library linked and run the same
//! way and built for `thumbv7em-none-eabihf`, and the installed package
//! (`scripts/install-sld.sh`) consumed through CMake and pkg-config.
//!
//! Tools: gcc/g++ (always), valgrind, cmake and pkg-config. A missing tool
//! skips its part with a message, unless `SLD_REQUIRE_TOOLS` is set (as
//! `.ci/run` does), which turns the skip into a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Extra libraries a static link of a Rust `std` library needs on Linux
/// (`rustc --print native-static-libs`).
const STATIC_LIBS: &[&str] = &["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn work() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c-abi")
}

/// The folder holding the `libsld.a` / `libsld.so` cargo built for this test.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let deps = exe.parent().expect("deps folder").to_path_buf();
    for f in ["libsld.a", "libsld.so"] {
        assert!(deps.join(f).exists(), "{} not built next to the test", f);
    }
    deps
}

/// The known-answer kit, written once per test run.
fn kit() -> &'static Path {
    static KIT: OnceLock<PathBuf> = OnceLock::new();
    KIT.get_or_init(|| {
        let dir = work().join("kit");
        let kit = sld_train::beacon::beacon_kit(192, 144, 12, 3).expect("beacon kit");
        sld_train::beacon::write_kit(&kit, &dir).expect("write kit");
        dir
    })
}

fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("SLD_REQUIRE_TOOLS").is_none(),
            "{tool} is required (SLD_REQUIRE_TOOLS is set) but not installed"
        );
        eprintln!("skipping the {tool} part: {tool} is not installed");
    }
    ok
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{text}", out.status);
    text
}

/// Compiles `source` (C or C++) into `out`, linking `link` (library
/// arguments), with every warning an error.
fn compile(compiler: &str, source: &str, out: &Path, defines: &[&str], link: &[String]) {
    let std = if compiler.ends_with("++") {
        "-std=c++17"
    } else {
        "-std=c11"
    };
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    run(Command::new(compiler)
        .args([std, "-Wall", "-Wextra", "-Werror", "-g", "-O1"])
        .args(defines)
        .arg("-I")
        .arg(root().join("include"))
        .arg(root().join(source))
        .args(link)
        .arg("-o")
        .arg(out));
}

fn static_link(lib: &Path) -> Vec<String> {
    let mut v = vec![lib.display().to_string()];
    v.extend(STATIC_LIBS.iter().map(|s| s.to_string()));
    v
}

fn shared_link(dir: &Path) -> Vec<String> {
    vec![
        format!("-L{}", dir.display()),
        "-lsld".into(),
        format!("-Wl,-rpath,{}", dir.display()),
        "-lm".into(),
    ]
}

/// Runs a consumer on the kit, under valgrind when it is installed (any
/// invalid access or leak fails the run), and returns its output.
fn run_consumer(exe: &Path) -> String {
    let text = if have("valgrind") {
        run(Command::new("valgrind")
            .args([
                "-q",
                "--error-exitcode=99",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite,indirect,possible",
            ])
            .arg(exe)
            .arg(kit()))
    } else {
        run(Command::new(exe).arg(kit()))
    };
    eprintln!("{}:\n{text}", exe.display());
    text
}

/// Builds `source` with `compiler` against the static and the shared
/// library and runs both on the kit, expecting `passed` in the output.
fn static_and_shared(compiler: &str, source: &str, name: &str, passed: &str) {
    let libs = lib_dir();
    let out = work().join("bin");
    let builds = [
        (format!("{name}_static"), static_link(&libs.join("libsld.a"))),
        (format!("{name}_shared"), shared_link(&libs)),
    ];
    for (exe, link) in builds {
        compile(compiler, source, &out.join(&exe), &[], &link);
        assert!(run_consumer(&out.join(&exe)).contains(passed), "{exe}");
    }
}

#[test]
fn c_consumer_static_and_shared() {
    static_and_shared("gcc", "tests/c/consumer.c", "c", "all C checks passed");
}

#[test]
fn cpp_consumer_static_and_shared() {
    static_and_shared("g++", "tests/c/consumer.cpp", "cpp", "all C++ checks passed");
}

/// Builds `tests/no-std-ffi` (sld-ffi without std, panic = abort) for the
/// host or `target`; returns the static library.
fn build_firmware(target: Option<&str>) -> PathBuf {
    let target_dir = root().join("target/no-std-ffi");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(root().join("tests/no-std-ffi/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's flags (coverage, sanitizers) must not leak in.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    run(&mut cmd);
    let dir = match target {
        Some(t) => target_dir.join(t).join("release"),
        None => target_dir.join("release"),
    };
    dir.join("libsld_firmware.a")
}

/// The firmware library needs nothing from the platform but malloc, free
/// and abort: a C program links it with only -lm (for its own math) and
/// passes every check, under valgrind.
#[test]
fn firmware_library_links_without_std_and_passes_the_c_checks() {
    let lib = build_firmware(None);
    let exe = work().join("bin/c_firmware");
    compile(
        "gcc",
        "tests/c/consumer.c",
        &exe,
        &["-DSLD_NO_STD"],
        &[lib.display().to_string(), "-lm".into()],
    );
    assert!(run_consumer(&exe).contains("all C checks passed"));
}

#[test]
fn firmware_library_builds_for_bare_metal_thumbv7em() {
    let target = "thumbv7em-none-eabihf";
    let installed = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", target])
        .output()
        .is_ok_and(|o| {
            o.status.success() && PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).exists()
        });
    if !installed {
        assert!(
            std::env::var_os("SLD_REQUIRE_TOOLS").is_none(),
            "{target} must be installed (rustup target add {target})"
        );
        eprintln!("skipping: rustup target add {target}");
        return;
    }
    let lib = build_firmware(Some(target));
    assert!(std::fs::metadata(&lib).is_ok_and(|m| m.len() > 0));
}

/// `scripts/install-sld.sh` → a prefix that CMake's `find_package(sld)` and
/// pkg-config both consume; the example in `examples/c` builds against it
/// (shared and static) and localises the kit.
#[test]
fn installed_package_builds_the_c_example() {
    let prefix = work().join("prefix");
    let _ = std::fs::remove_dir_all(&prefix);
    run(Command::new("bash")
        .arg(root().join("scripts/install-sld.sh"))
        .arg(&prefix)
        .arg("--lib-dir")
        .arg(lib_dir()));
    for f in [
        "include/sld.h",
        "lib/libsld.a",
        "lib/libsld.so",
        "lib/pkgconfig/sld.pc",
        "lib/cmake/sld/sldConfig.cmake",
    ] {
        assert!(prefix.join(f).exists(), "{f} not installed");
    }
    let truth = std::fs::read_to_string(kit().join("truth.txt")).unwrap();
    let intr: Vec<String> = truth
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .split_whitespace()
        .skip(2)
        .take(4)
        .map(String::from)
        .collect();
    let check = |exe: &Path| {
        let out = run(Command::new(exe)
            .arg(kit().join("model.sld"))
            .arg(kit().join("image.ppm"))
            .args(&intr));
        assert!(out.contains("12 inliers of 12 detections"), "{out}");
    };

    if have("cmake") {
        for (name, static_) in [("cmake-shared", "OFF"), ("cmake-static", "ON")] {
            let build = work().join(name);
            let _ = std::fs::remove_dir_all(&build);
            run(Command::new("cmake")
                .arg("-S")
                .arg(root().join("examples/c"))
                .arg("-B")
                .arg(&build)
                .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
                .arg(format!("-DSLD_STATIC={static_}")));
            run(Command::new("cmake").arg("--build").arg(&build));
            check(&build.join("localize"));
        }
    }
    if have("pkg-config") {
        let pc = prefix.join("lib/pkgconfig");
        let flags = |extra: &[&str]| -> Vec<String> {
            run(Command::new("pkg-config")
                .env("PKG_CONFIG_PATH", &pc)
                .args(extra)
                .args(["--cflags", "--libs", "sld"]))
            .split_whitespace()
            .map(String::from)
            .collect()
        };
        let exe = work().join("bin/pkgconfig-shared");
        let mut link = flags(&[]);
        link.push(format!("-Wl,-rpath,{}", prefix.join("lib").display()));
        compile("gcc", "examples/c/localize.c", &exe, &[], &link);
        check(&exe);
        // Static: link the archive by path, the private libraries from the .pc.
        let exe = work().join("bin/pkgconfig-static");
        let mut link: Vec<String> = flags(&["--static"])
            .into_iter()
            .filter(|f| f != "-lsld")
            .collect();
        link.insert(0, prefix.join("lib/libsld.a").display().to_string());
        compile("gcc", "examples/c/localize.c", &exe, &[], &link);
        check(&exe);
    }
}

/// `scripts/install-sld.sh` looks for the libraries where cargo puts them,
/// `CARGO_TARGET_DIR` included (issue 19, item 14).
#[test]
fn install_script_honours_cargo_target_dir() {
    let print_for = |triple: Option<&str>, target: Option<&str>| {
        let mut c = Command::new("bash");
        c.arg(root().join("scripts/install-sld.sh"));
        if let Some(t) = triple {
            c.args(["--target", t]);
        }
        c.arg("--print-lib-dir");
        match target {
            Some(t) => c.env("CARGO_TARGET_DIR", t),
            None => c.env_remove("CARGO_TARGET_DIR"),
        };
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let print = |target: Option<&str>| print_for(None, target);
    assert_eq!(print(Some("/opt/elsewhere")), "/opt/elsewhere/release");
    assert_eq!(
        print_for(Some("aarch64-unknown-linux-gnu"), Some("/opt/t")),
        "/opt/t/aarch64-unknown-linux-gnu/release"
    );
    let default = print(None);
    assert!(default.ends_with("/release"), "{default}");
}
