"""The gradio web app (`stablepaint app`): sketch editors → the conditioning contract → any stablepaint pipeline."""
