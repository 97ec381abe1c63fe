# The anvil image: the build's Debian packages (exactly scripts/setup.sh's),
# the project built from this folder, and its tools on PATH (launcher, train,
# sample, rdzv_server, ckpt_tool, tokenize). k8s/*.yaml run it as anvil:latest.
#
#   docker build -t anvil:latest .                     # CPU nodes
#   docker build -t anvil:latest --build-arg CUDA=12-6 .  # GPU nodes
#
# CUDA=<major>-<minor> adds NVIDIA's CUDA repository for Debian 12 (NVIDIA
# publishes no Debian CUDA base image; its Ubuntu ones lack the Debian 12
# packages setup.sh names) and installs the toolkit and NCCL from it, so the
# CUDA/NCCL targets are built (CMake finds /usr/local/cuda). Left empty, the
# image is CPU only and needs nothing from NVIDIA. The GPU image is run with
# the NVIDIA container runtime, which mounts the driver.
#
# Invariant: scripts/check_image_recipe.sh performs these steps (ARG, ENV,
# WORKDIR, COPY, RUN, in order) in a debootstrapped Debian 12 root and trains
# in it, so keep to those instructions and to shell-form RUN.
FROM debian:bookworm

ARG CUDA=
ARG JOBS=2
ARG DEBIAN_FRONTEND=noninteractive

COPY scripts/setup.sh /src/scripts/setup.sh
RUN /src/scripts/setup.sh
RUN if [ -n "$CUDA" ]; then \
      apt-get install -y -qq --no-install-recommends ca-certificates wget && \
      wget -q -O /tmp/cuda-keyring.deb \
        https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb && \
      dpkg -i /tmp/cuda-keyring.deb && rm /tmp/cuda-keyring.deb && \
      apt-get update -qq && \
      apt-get install -y -qq --no-install-recommends "cuda-toolkit-$CUDA" libnccl-dev ; \
    fi && rm -rf /var/lib/apt/lists/*

COPY . /src
WORKDIR /src
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null && \
    ninja -C build -j "$JOBS" launcher train sample rdzv_server ckpt_tool tokenize && \
    install -m 0755 build/launcher/launcher build/launcher/server/rdzv_server \
      build/runtime/trainer/train build/runtime/diffusion/sample \
      build/runtime/checkpoint/ckpt_tool build/runtime/data/tokenize /usr/local/bin/ && \
    rm -rf build

WORKDIR /workspace
