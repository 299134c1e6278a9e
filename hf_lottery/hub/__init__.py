"""Publishing on the Hugging Face Hub: pushes (one commit each) and model cards."""
