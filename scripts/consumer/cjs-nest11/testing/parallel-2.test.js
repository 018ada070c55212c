require('./suite');
