//! Indoor6 layout: round trips, Python interop for the pickle, and errors
//! that name the file and line.

use std::path::PathBuf;
use std::process::Command;

use sld_core::nalgebra::Vector3;
use sld_core::{position_error_m, rotation_error_deg, Camera, Pose};
use sld_train::data::indoor6::*;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sld-indoor6-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn err_of<T: std::fmt::Debug>(r: anyhow::Result<T>) -> String {
    format!("{:#}", r.unwrap_err())
}

#[test]
fn intrinsics_and_poses_round_trip() {
    let d = dir("ip");
    let i = Intrinsics {
        camera: Camera::new(1280, 720, 1060.25, 1060.25, 639.5, 359.25, -0.0123).unwrap(),
        original_name: "seq1/000042.jpg".into(),
    };
    let p = d.join("000042.intrinsics.txt");
    write_intrinsics(&p, &i).unwrap();
    assert_eq!(read_intrinsics(&p).unwrap(), i);

    let pose = Pose::from_axis_angle(Vector3::new(0.3, -1.2, 0.7), Vector3::new(1.5, -0.25, 3.0));
    let q = d.join("000042.pose.txt");
    write_pose(&q, &pose).unwrap();
    let back = read_pose(&q).unwrap();
    assert!(rotation_error_deg(&pose, &back) < 1e-9 && position_error_m(&pose, &back) < 1e-12);
}

#[test]
fn bad_intrinsics_and_poses_name_file_and_line() {
    let d = dir("bad");
    let p = d.join("a.intrinsics.txt");
    std::fs::write(&p, "1280 720 0 639.5 359.5 0 x\n").unwrap();
    assert!(err_of(read_intrinsics(&p)).contains("a.intrinsics.txt:1: invalid intrinsics"));
    std::fs::write(&p, "1280 720 900\n").unwrap();
    assert!(err_of(read_intrinsics(&p))
        .contains("a.intrinsics.txt:1: expected W H f cx cy kappa [original-name], found 3 values"));
    let q = d.join("a.pose.txt");
    std::fs::write(&q, "1 0 0 0\n0 1 0 0\n0 0 nan 0\n").unwrap();
    assert!(err_of(read_pose(&q)).contains("a.pose.txt:3: value 3 ('nan') is not a finite number"));
    std::fs::write(&q, "1 0 0 0\n0 1 0 0\n").unwrap();
    assert!(err_of(read_pose(&q)).contains("expected 3 rows"));
    std::fs::write(&q, "2 0 0 0\n0 1 0 0\n0 0 1 0\n").unwrap();
    assert!(err_of(read_pose(&q)).contains("not a rotation"));
    assert!(err_of(read_pose(&d.join("missing.pose.txt"))).contains("cannot read"));
}

#[test]
fn landmarks_and_visibility_round_trip_and_validate() {
    let d = dir("lv");
    let pts = vec![[0.5, -1.25, 3.0], [2.0, 0.0, -0.125], [1e-6, 4.5, 2.25]];
    let p = d.join("landmarks-3.txt");
    write_landmarks(&p, &pts).unwrap();
    assert_eq!(read_landmarks(&p).unwrap(), pts);
    // Out-of-order ids are fine; duplicates, gaps and junk are not.
    std::fs::write(&p, "2\n1 1 2 3\n0 4 5 6\n").unwrap();
    assert_eq!(
        read_landmarks(&p).unwrap(),
        vec![[4.0, 5.0, 6.0], [1.0, 2.0, 3.0]]
    );
    std::fs::write(&p, "2\n0 1 2 3\n0 4 5 6\n").unwrap();
    assert!(err_of(read_landmarks(&p)).contains("landmarks-3.txt:3: duplicate id 0"));
    std::fs::write(&p, "3\n0 1 2 3\n1 4 5 6\n").unwrap();
    assert!(err_of(read_landmarks(&p)).contains("header says 3 landmarks, found 2"));
    std::fs::write(&p, "2\n0 1 2 3\n1 4 x 6\n").unwrap();
    assert!(err_of(read_landmarks(&p)).contains("landmarks-3.txt:3: value 3 ('x')"));

    let v = Visibility {
        images: 4,
        rows: vec![vec![true, false, false, true], vec![false; 4], vec![true; 4]],
    };
    let q = d.join("visibility-3.txt");
    write_visibility(&q, &v).unwrap();
    assert_eq!(read_visibility(&q).unwrap(), v);
    std::fs::write(&q, "1 0 1\n0 1\n").unwrap();
    assert!(err_of(read_visibility(&q)).contains("visibility-3.txt:2: 2 columns, earlier rows have 3"));
    std::fs::write(&q, "1 0 2\n").unwrap();
    assert!(err_of(read_visibility(&q)).contains("visibility-3.txt:1: column 3 is '2'"));
}

fn python() -> Option<&'static str> {
    ["python3", "python"].into_iter().find(|p| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn split_pickle_round_trips_and_interoperates_with_python() {
    let d = dir("split");
    let split = Split {
        train: vec!["000000.color.jpg".into(), "000002.color.jpg".into()],
        val: vec!["000001.color.jpg".into()],
        test: vec!["000003.color.jpg".into(), "000004.color.jpg".into()],
        train_idx: vec![0, 2],
        val_idx: vec![1],
        test_idx: vec![3, 4],
    };
    let p = d.join("train_test_val.pkl");
    write_split(&p, &split).unwrap();
    assert_eq!(read_split(&p).unwrap(), split);

    let Some(py) = python() else {
        eprintln!("skipping the Python half: no python3 on this machine");
        return;
    };
    // Python reads ours…
    let out = Command::new(py)
        .arg("-c")
        .arg("import pickle,sys; d=pickle.load(open(sys.argv[1],'rb')); print(d['test'][1], d['train_idx'], sorted(d))")
        .arg(&p)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "000004.color.jpg [0, 2] ['test', 'test_idx', 'train', 'train_idx', 'val', 'val_idx']"
    );
    // …and we read Python's (as the SLD* code writes it, protocol 4, extra keys).
    let q = d.join("from_python.pkl");
    let st = Command::new(py)
        .arg("-c")
        .arg(
            "import pickle,sys; pickle.dump({'train':['a.jpg'],'val':[],'test':['b.jpg','c.jpg'],\
             'train_idx':[0],'val_idx':[],'test_idx':[1,2],'note':'extra'}, open(sys.argv[1],'wb'), protocol=4)",
        )
        .arg(&q)
        .status()
        .unwrap();
    assert!(st.success());
    let s = read_split(&q).unwrap();
    assert_eq!(s.test, vec!["b.jpg".to_string(), "c.jpg".to_string()]);
    assert_eq!(s.test_idx, vec![1, 2]);
    // Inconsistent names/indices are rejected.
    let st = Command::new(py)
        .arg("-c")
        .arg(
            "import pickle,sys; pickle.dump({'train':['a.jpg'],'val':[],'test':[],\
             'train_idx':[0,1],'val_idx':[],'test_idx':[]}, open(sys.argv[1],'wb'))",
        )
        .arg(&q)
        .status()
        .unwrap();
    assert!(st.success());
    assert!(err_of(read_split(&q)).contains("'train' has 1 names but 'train_idx' has 2 indices"));
}
