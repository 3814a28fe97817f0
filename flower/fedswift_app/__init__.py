"""FedAvg across FedSwift and PyTorch nodes."""
