#!/usr/bin/env bash
# Rebuilds sld-train/tests/fixtures/colmap-room5: a real COLMAP reconstruction
# of the synthetic scene `sld synth --seed 5 --images 36 --sessions 1`.
# Needs COLMAP (Debian: apt-get install colmap; 3.8 made the committed one).
set -euo pipefail
cd "$(dirname "$0")/.."
W=$(mktemp -d)
cargo run --release -p sld-train -- synth --out "$W/scene" --seed 5 --images 36 --sessions 1
mkdir -p "$W/imgs" "$W/sparse" "$W/txt"
cp "$W"/scene/images/*.color.jpg "$W/imgs/"
colmap feature_extractor --database_path "$W/db.db" --image_path "$W/imgs" \
  --ImageReader.single_camera 1 --ImageReader.camera_model SIMPLE_RADIAL \
  --SiftExtraction.use_gpu 0 --SiftExtraction.max_num_features 1500 --SiftExtraction.num_threads 2
colmap exhaustive_matcher --database_path "$W/db.db" --SiftMatching.use_gpu 0 --SiftMatching.num_threads 2
colmap mapper --database_path "$W/db.db" --image_path "$W/imgs" --output_path "$W/sparse" --Mapper.num_threads 2
colmap model_converter --input_path "$W/sparse/0" --output_path "$W/txt" --output_type TXT
F=sld-train/tests/fixtures/colmap-room5
mkdir -p "$F/bin" "$F/txt"
cp "$W"/sparse/0/{cameras,images,points3D}.bin "$F/bin/"
cp "$W"/txt/{cameras,images,points3D}.txt "$F/txt/"
colmap model_analyzer --path "$W/sparse/0"
