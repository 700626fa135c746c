#!/usr/bin/env bash
# The one-shot GPU check (built by `cargo xtask gpu-check --build`): every device-parametrised
# test, the NCCL collectives (when mpirun is here), then Ember's GPU benchmarks and PyTorch's on
# the same GPU, all into one report file.
# Run from the repository root on a GPU machine: bash target/gpu-check/run.sh
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUTDIR="${OUT:-$HERE/out}"
mkdir -p "$OUTDIR"
REPORT="$OUTDIR/gpu-report.txt"

# The machine's CUDA 13 libraries (NVRTC, cuBLAS) live in its Python environment's wheels.
LIBS=""
for sp in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
  for d in "$sp"/nvidia/*/lib; do [ -d "$d" ] && LIBS="$LIBS:$d"; done
done
export LD_LIBRARY_PATH="${LIBS#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export EMBER_PARITY_DIR="$REPO/parity"
export EMBER_CUDA_CACHE="${TMPDIR:-/tmp}/ember-cuda-cache"
export RUST_BACKTRACE=1

{
  echo "== $(date -u) on $(hostname)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
  fails=0
  for t in "$HERE"/bin/test-*; do
    echo "== $(basename "$t")"
    timeout 240 "$t" --test-threads=4 2>&1
    rc=$?
    echo "== $(basename "$t"): exit $rc"
    [ $rc -eq 0 ] || fails=$((fails + 1))
  done
  # NCCL: ember-distributed's collectives and DDP on CUDA tensors, one rank per GPU under
  # mpirun (world size 1 on a one-GPU machine still runs every NCCL code path; the test prints
  # so). It needs Open MPI's mpirun and libraries here and NCCL's library; without one of them
  # it is skipped, saying why, and the rest of the check goes on.
  echo "== NCCL collectives (ember-distributed tests/mpi.rs --only-nccl)"
  NCCL_BIN="$HERE/bin/nccl-mpi"
  nccl_lib=""
  for d in ${LD_LIBRARY_PATH//:/ }; do
    ls "$d"/libnccl.so* >/dev/null 2>&1 && nccl_lib="$d"
  done
  [ -n "$nccl_lib" ] || nccl_lib="$(ldconfig -p 2>/dev/null | grep -m1 -o '/.*libnccl\.so.*')"
  if [ ! -x "$NCCL_BIN" ]; then
    echo "== NCCL: skipped: the bundle has no NCCL test (Open MPI was not installed where it was built)"
  elif ! command -v mpirun >/dev/null 2>&1; then
    echo "== NCCL: skipped: mpirun not found on this machine (Open MPI is not installed: apt-get install openmpi-bin libopenmpi-dev)"
  elif missing="$(ldd "$NCCL_BIN" 2>&1 | grep 'not found')"; [ -n "$missing" ]; then
    echo "== NCCL: skipped: libraries of the test binary are missing here: $missing"
  elif [ -z "$nccl_lib" ]; then
    echo "== NCCL: skipped: no libnccl.so in LD_LIBRARY_PATH (the Python environment's nvidia/nccl/lib) nor in ldconfig's cache"
  else
    timeout 240 "$NCCL_BIN" --only-nccl 2>&1
    rc=$?
    echo "== nccl-mpi: exit $rc"
    [ $rc -eq 0 ] || fails=$((fails + 1))
  fi
  echo "== Ember GPU benchmarks"
  timeout 120 "$HERE/bin/xtask" gpu-bench 2>&1
  echo "== Ember MNIST MLP epoch on the GPU (bench-mnist --device cuda: data on the device)"
  timeout 180 "$HERE/bin/xtask" bench-mnist --device cuda --data "$REPO/datasets/mnist" 2>&1
  echo "== PyTorch GPU benchmarks"
  timeout 120 python3 "$HERE/pytorch_gpu.py" 2>&1
  echo "== test binaries failing: $fails"
} 2>&1 | tee "$REPORT"
