"""Unlearning fine-tuning (DESIGN.md section 6).

losses.py      the methods by name: one loss function each, in a registry
pairing.py     forget examples paired with retain examples; their collator
trainer.py     the Trainer subclass: one forward for forget+retain, the reference = adapter disabled
training.py    LoRA, TrainingArguments, checkpoints/resume, history and summary
config.py      params:finetune -> FinetuneConfig, checked before training
launch.py      the finetune stage under torchrun/accelerate (docs/scale_out.md)
collation.py   dynamic padding shared with the target stage
"""
