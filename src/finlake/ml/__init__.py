"""Fraud features (Feast), training and the model registry (MLflow), predictions.

Needs the optional extra ``finlake[ml]``; nothing outside this package imports it eagerly.
"""
