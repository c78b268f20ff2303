"""Building the models Lifeline ships: the linear models (train), the fine-tuned encoder's delta
(finetune, which needs requirements-train.txt) and the rules' thresholds (calibrate).

Run from the repository (`python -m training.train`, ...); none of it is imported by the product
or shipped with it. It reads `corpus/` and writes `lifeline/insight/models/`.
"""
