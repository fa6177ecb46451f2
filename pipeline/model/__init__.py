"""The model: where a base model comes from and how it is loaded (4-bit, LoRA), its tokenizer and prompts, how
rows become batches, its forward passes, its parameter counts, and the provenance an adapter carries.
"""
