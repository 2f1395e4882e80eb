"""The paper's Table 2, typed from PAPER.md (HF id: silhouette true, DB true, silhouette KMeans, DB KMeans)."""

TABLE_2 = {
    "google/embeddinggemma-300m": (0.0339, 2.1082, 0.0857, 1.6192),
    "Alibaba-NLP/gte-multilingual-base": (-0.0837, 3.1835, 0.1904, 1.2395),
    "Alibaba-NLP/gte-large-en-v1.5": (-0.0924, 3.1173, 0.1718, 1.2234),
    "nomic-ai/nomic-embed-text-v2-moe": (-0.1141, 3.2009, 0.2497, 1.1364),
    "intfloat/multilingual-e5-large": (-0.0640, 2.6140, 0.1831, 1.3723),
    "Qwen/Qwen3-Embedding-0.6B": (0.1830, 1.5173, 0.1898, 1.3560),
    "Alibaba-NLP/gte-Qwen2-1.5B-instruct": (0.0563, 2.0755, 0.1499, 1.3922),
    "Qwen/Qwen3-Embedding-4B": (0.2724, 1.2080, 0.2724, 1.2081),
    "GritLM/GritLM-7B": (0.2017, 1.3827, 0.2429, 1.1863),
    "Alibaba-NLP/gte-Qwen2-7B-instruct": (0.1229, 1.6347, 0.1136, 1.5824),
    "intfloat/e5-mistral-7b-instruct": (0.3037, 1.1061, 0.3037, 1.1061),
    "Qwen/Qwen3-Embedding-8B": (0.3103, 1.0893, 0.3103, 1.0893),
    "nvidia/llama-embed-nemotron-8b": (0.0953, 1.7002, 0.0963, 1.6583),
    "BAAI/bge-multilingual-gemma2": (0.2568, 1.2246, 0.2568, 1.2246),
}
