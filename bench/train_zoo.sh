#!/usr/bin/env bash
# Train the JSCC zoo models (version 4, 2026-12-03: anchored on the linear analog code).
# SKIP="name1 name2" leaves runs out; ONLY="name1 name2" runs just those (several queues can then
# share the cores, THREADS=1 each). Resumable: rerun the script and each run continues from
# runs/<name>/latest.* ; finished runs (runs/<name>/FINISHED) are skipped. Each new best (on the
# validation split carved from the training images) is written to semcom/zoo/weights/<name>.* (fp16).
#   nohup bench/train_zoo.sh > runs/train_zoo.log 2>&1 &
# The recipes of the earlier zoo versions (conv/mlp models, v1-v3) are in this file's git history.
set -u
cd "$(dirname "$0")/.."
if [ -n "${WAIT_PID:-}" ]; then while kill -0 "$WAIT_PID" 2>/dev/null; do sleep 5; done; fi
PY=${PY:-.venv/bin/python}
MNIST=${MNIST_ROOT:-/work/shared/data}
CIFAR=${CIFAR_ROOT:-$HOME/.cache/semcom-data}
COMMON="--threads ${THREADS:-1} --snr-min 0 --snr-max 20 --snr-info --device ${DEVICE:-cpu}"

run() {  # run name (or run:zoo-name; run:- exports nothing), then options
  local name=${1%%:*} zoo=${1##*:}; shift
  local export=(--zoo-name "$zoo"); [ "$zoo" = "-" ] && export=()
  if [ -f "runs/$name/FINISHED" ]; then echo "skip $name (done)"; return; fi
  case " ${SKIP:-} " in *" $name "*) echo "skip $name (SKIP)"; return;; esac
  if [ -n "${ONLY:-}" ]; then case " $ONLY " in *" $name "*) ;; *) return;; esac; fi
  echo "=== $name $(date -u +%H:%M:%S)"
  $PY -m semcom train --out "runs/$name" "${export[@]}" $COMMON "$@" || echo "!!! $name failed"
}

# Anchored JSCC (semcom.jscc.anchored): a whole-image KLT linear code fitted on the training images
# (minus the validation split), MSE-optimal power allocation designed for 10 dB, average power
# normalisation; convolutional refinements start at zero, so training starts at the linear code's
# quality. CIFAR-10: --enc-width 0, the transmitter is the linear code itself and only the receivers
# (one refinement and one classifier per layer) learn; MNIST also refines the transmitter. Loss:
# mean PSNR (--loss psnr) plus 0.01 x the cross-entropy of each layer's classifier. Each cosine
# schedule is annealed by its wall-clock budget (--max-minutes); all six runs together take about
# 75 minutes of wall clock on 2 CPU cores (four at once, one thread each), well inside a working day.
# On one GPU: DEVICE=cuda THREADS=4 and, with the time to spare, wider receivers (--dec-width 128
# --dec-blocks 2) and longer budgets; ship what wins on bench/bench_compare.py.
# A run stopped by its budget gets its full-test-set card at the end; `semcom train --finish --out
# runs/NAME --zoo-name NAME` does that for a run interrupted before it.
ANCHOR="--arch anchored --anchor-transform klt --anchor-allocation mmse --anchor-design-snr 10 --anchor-power average"
# (--data-note came after the 2026-12-03 runs: their cards got the same sentence written in afterwards.)
CIFAR_NOTE="The copy used is a JPEG quality-75 re-encoding of the official images written in the official binary layout; PSNR on it runs somewhat higher than on the official CIFAR-10."
CIFAR_V4="$ANCHOR --enc-width 0 --dec-width 64 --loss psnr --ce-weight 0.01 --validation 5000 --eval-count 1000"
run cifar10-mr3-awgn-v4:cifar10-mr3-awgn --dataset cifar10 --data-root "$CIFAR" --data-note "$CIFAR_NOTE" $CIFAR_V4 \
    --layer-symbols 192,160,160 --channel awgn --epochs 60 --batch-size 64 --lr 1e-3 --augment-flip \
    --max-minutes ${CIFAR_MINUTES:-95}
run cifar10-djscc-awgn-v4:cifar10-djscc-awgn --dataset cifar10 --data-root "$CIFAR" --data-note "$CIFAR_NOTE" $CIFAR_V4 \
    --layers 1 --layer-symbols 512 --channel awgn --epochs 60 --batch-size 64 --lr 1e-3 --augment-flip \
    --max-minutes ${CIFAR_MINUTES:-95}
run cifar10-mr3-rayleigh-v4:cifar10-mr3-rayleigh --dataset cifar10 --data-root "$CIFAR" --data-note "$CIFAR_NOTE" $CIFAR_V4 \
    --layer-symbols 192,160,160 --channel rayleigh --block image --csi perfect --epochs 60 --batch-size 64 \
    --lr 1e-3 --augment-flip --max-minutes ${CIFAR_RAYLEIGH_MINUTES:-95}
MNIST_V4="$ANCHOR --enc-width 32 --dec-width 32 --loss psnr --ce-weight 0.01 --validation 5000 --eval-count 1000"
run mnist-mr3-awgn-v4:mnist-mr3-awgn --dataset mnist --data-root "$MNIST" --exclude-mnist-sample $MNIST_V4 \
    --layers 3 --rho 1/6 --channel awgn --epochs 40 --batch-size 64 --lr 1e-3 --max-minutes ${MNIST_MINUTES:-25}
run mnist-mr3-rayleigh-v4:mnist-mr3-rayleigh --dataset mnist --data-root "$MNIST" --exclude-mnist-sample \
    --init runs/mnist-mr3-awgn-v4/best.safetensors --loss psnr --ce-weight 0.01 --validation 5000 \
    --eval-count 1000 --channel rayleigh --block image --csi perfect --epochs 20 --batch-size 64 --lr 5e-4 \
    --warmup-steps 0 --max-minutes ${MNIST_RAYLEIGH_MINUTES:-20}
# The shipped semantic receiver is tied to the MNIST model's weights (sha256): retrain it on the new one.
if [ -z "${ONLY:-}" ] || case " $ONLY " in *" receiver "*) true;; *) false;; esac; then
  $PY -m semcom train-receiver per-layer-heads --model mnist-mr3-awgn --dataset mnist --data-root "$MNIST" \
      --epochs 2 --eval-snrs 0,10,20 --out semcom/receivers/weights/mnist-mr3-awgn-per-layer-heads.safetensors
fi
echo "=== all done $(date -u +%H:%M:%S)"
