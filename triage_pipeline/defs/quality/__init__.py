"""Group `quality`: the evaluation of prompt versions on a labelled file."""
